import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Run } from '@conveyor/contracts';
import { BuildSystem, stepOf } from '../support/build-system';
import { TestBrowser, screenshot } from '../support/browser';
import { tutorialPipeline } from '../support/builtin-drivers';
import { TestSystem } from '../support/system';
import { waitFor } from '../support/processes';

/**
 * The dashboard in Debian's chromium (headless, through playwright-core) against the real stack:
 * nats-server, the gateway serving the built bundle (dist/web, made by `npm run build`), the
 * built-in drivers running real Docker builds of a real git repository. Screenshots of every
 * page land beside the test results (.data/test-results/screenshots).
 */
jest.setTimeout(300_000);

const ADMIN = randomBytes(16).toString('hex');
const WRITER = randomBytes(16).toString('hex');
const READER = randomBytes(16).toString('hex');

const APP_SCHEMA = {
  type: 'object',
  required: ['repository', 'commands'],
  properties: {
    repository: { type: 'string', description: 'where to clone from' },
    ref: { type: 'string' },
    commands: { type: 'array', items: { type: 'string' } },
  },
};

/** Statuses the run page's title badge showed, sampled until it shows `last` (bounded). */
async function statusesUntil(page: Page, last: string, timeoutMs = 120_000): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await page.locator('h1 [data-status]').getAttribute('data-status', { timeout: 5_000 }).catch(() => null);
    if (s && seen.at(-1) !== s) seen.push(s);
    if (s === last) return seen;
    await page.waitForTimeout(50);
  }
  throw new Error(`the run page never showed "${last}" (saw ${seen.join(' → ') || 'nothing'})`);
}

async function markNoReload(page: Page): Promise<() => Promise<boolean>> {
  // A reload would start a new document, without this mark.
  await page.evaluate('globalThis.__sameDocument = true');
  return async () => (await page.evaluate('globalThis.__sameDocument === true')) === true;
}

describe('the web dashboard with API tokens, real builds', () => {
  let build: BuildSystem;
  let browser: TestBrowser;
  let page: Page;
  let base: string;

  const signIn = async (token: string, role: string) => {
    await page.goto(`${base}/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').filter({ hasText: `role: ${role}` }).waitFor();
  };
  const signOut = async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
  };
  /** Each test can run alone (jest -t): it signs in when the tab has no token yet. */
  const signedInAs = async (token: string, role: string) => {
    await page.goto(`${base}/`);
    await Promise.race([page.getByLabel('API token').waitFor(), page.getByTestId('role').waitFor()]);
    if (await page.getByLabel('API token').count()) await signIn(token, role);
  };
  const startApp = async (pipeline: string, commands: string[]) =>
    (await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name: `${pipeline}-${randomBytes(3).toString('hex')}`, resource: 'app', pipeline, spec: { repository: build.repo.url, commands } })).runid;

  beforeAll(async () => {
    build = await BuildSystem.start({ CONVEYOR_API_TOKENS: `${ADMIN}:admin,${WRITER}:write,${READER}:read` });
    await build.sys.api.ok('POST', '/resource-definitions', { name: 'app', version: '1', description: 'a git repository and the commands that build it', schema: APP_SCHEMA });
    await build.sys.api.ok('POST', '/pipelines', tutorialPipeline('web', 'app'));
    browser = await TestBrowser.launch();
    page = await browser.page();
    base = build.sys.api.baseUrl;
  });

  afterAll(async () => {
    await browser?.close();
    expect(await build?.stop()).toBe(0);
  });

  it('asks for a token, triggers a pipeline from the page and shows the run reach succeeded live, with coloured lines in order', async () => {
    await page.goto(`${base}/`);
    await page.getByLabel('API token').waitFor();
    await screenshot(page, 'sign-in');
    await signIn(WRITER, 'write');

    await page.goto(`${base}/#/trigger?pipeline=web`);
    await page.getByLabel('Resource name').fill('web-app');
    await page.locator('#spec-repository').fill(build.repo.url);
    // Checked in the form against the definition's schema before anything is sent.
    await page.locator('#spec-commands').fill('"not a list"');
    await page.getByTestId('errors-spec-commands').waitFor();
    expect(await page.getByRole('button', { name: 'Start the run' }).isDisabled()).toBe(true);
    const commands = [
      "for i in 1 2 3 4 5; do printf '\\033[32mcolour %s\\033[0m\\n' $i; sleep 0.3; done",
      "echo '::group::Details'",
      'echo inside-the-group',
      "echo '::endgroup::'",
      'echo done',
    ];
    await page.locator('#spec-commands').fill(JSON.stringify(commands));
    await screenshot(page, 'trigger');
    const sameDocument = await markNoReload(page);
    await page.getByRole('button', { name: 'Start the run' }).click();
    await page.waitForURL(/#\/runs\/[0-9a-z]{26}$/);
    const runId = /#\/runs\/([0-9a-z]{26})$/.exec(page.url())![1];

    const seen = await statusesUntil(page, 'succeeded');
    expect(seen).toContain('running');
    expect(seen.at(-1)).toBe('succeeded');
    expect(await sameDocument()).toBe(true);
    expect((await build.sys.api.run(runId)).status).toBe('succeeded');

    await page.getByRole('tab', { name: 'build' }).click();
    await page.locator('.log-row .ansi-green-fg').nth(4).waitFor();
    expect(await page.locator('.log-row .ansi-green-fg').allTextContents()).toEqual(['colour 1', 'colour 2', 'colour 3', 'colour 4', 'colour 5']);
    // A closed ::group:: is folded: its lines appear when it is opened.
    const group = page.getByRole('button', { name: /Details/ });
    expect(await group.getAttribute('aria-expanded')).toBe('false');
    const inside = page.locator('.log-row .text').filter({ hasText: /^inside-the-group$/ });
    expect(await inside.count()).toBe(0);
    await group.click();
    await inside.waitFor();
    await screenshot(page, 'run-succeeded');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'run-succeeded-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('shows a new run in the runs list and its status change, without reloading', async () => {
    await signedInAs(WRITER, 'write');
    await page.goto(`${base}/#/runs`);
    await page.locator('.live-open').waitFor();
    const sameDocument = await markNoReload(page);
    const runId = await startApp('web', ['echo hello', 'sleep 1']);
    const row = page.locator(`tr[data-run="${runId}"]`);
    await row.waitFor();
    await row.locator('[data-status="succeeded"]').waitFor({ timeout: 120_000 });
    expect(await sameDocument()).toBe(true);
    await screenshot(page, 'runs');
  });

  it('cancels a long run with the button: it ends cancelled and its cleanup step runs', async () => {
    await signedInAs(WRITER, 'write');
    const runId = await startApp('web', ['echo started', 'sleep 120']);
    await page.goto(`${base}/#/runs/${runId}`);
    await page.locator('tr[data-step="build"] [data-status="running"]').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('h1 [data-status="cancelled"]').waitFor({ timeout: 120_000 });
    await page.locator('tr[data-step="stop"] [data-status="succeeded"]').waitFor();
    const run = await build.sys.api.run(runId);
    expect(run.status).toBe('cancelled');
    expect(stepOf(run, 'stop').status).toBe('succeeded');
    await screenshot(page, 'run-cancelled');
  });

  it('with a read token: the role is shown and there is no cancel, re-run or trigger button', async () => {
    const runId = await startApp('web', ['sleep 120']);
    await signedInAs(WRITER, 'write');
    await signOut();
    await signIn(READER, 'read');
    await page.goto(`${base}/#/runs/${runId}`);
    await page.locator('h1 [data-status="running"]').waitFor({ timeout: 120_000 });
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /Re-run/ }).count()).toBe(0);
    await screenshot(page, 'run-read-only');
    await page.goto(`${base}/#/runs`);
    await page.locator(`tr[data-run="${runId}"]`).waitFor();
    expect(await page.getByRole('link', { name: 'Trigger a run' }).count()).toBe(0);
    // The API refuses what the page does not offer.
    const refused = await fetch(`${base}/runs/${runId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${READER}` } });
    expect(refused.status).toBe(403);
    await build.sys.api.ok('POST', `/runs/${runId}/cancel`);
    await build.sys.waitForRun(runId);
    await signOut();
    await signIn(WRITER, 'write');
  });

  it('follows a 3,000-line log through a gateway restart: every line once, in order', async () => {
    await signedInAs(WRITER, 'write');
    const runId = await startApp('web', ['for i in $(seq 1 3000); do echo "n $i"; if [ $((i % 250)) = 0 ]; then sleep 0.4; fi; done']);
    await page.goto(`${base}/#/runs/${runId}?step=build`);
    await waitFor('the page to show 500 lines of the log', async () => (Number((await page.getByTestId('log-count').textContent())?.replace(/\D/g, '')) >= 500 ? true : undefined), 120_000, 50);
    // A real fault: the gateway goes away mid-stream and comes back on the same port; the page
    // reconnects with Last-Event-ID.
    await build.sys.restartGateway(undefined, { samePort: true });
    const run: Run = await build.sys.waitForRun(runId, ['succeeded', 'failed', 'cancelled'], 120_000);
    expect(run.status).toBe('succeeded');
    await page.getByText(/The log is complete/).waitFor({ timeout: 60_000 });
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download' }).click();
    const file = await (await download).path();
    const numbered = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^n \d+$/.test(l))
      .map((l) => Number(l.slice(2)));
    expect(numbered).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    await screenshot(page, 'run-log-3000');
  });
});

describe('the web dashboard without API tokens (loopback)', () => {
  let sys: TestSystem;
  let browser: TestBrowser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startDriver(['work']);
    browser = await TestBrowser.launch();
    page = await browser.page();
    base = sys.api.baseUrl;
  });

  afterAll(async () => {
    await browser?.close();
    await sys?.stop();
  });

  it('just works: no sign-in, every section is reachable and the graph of a pipeline is drawn', async () => {
    await sys.api.ok('POST', '/pipelines', {
      name: 'fan',
      resource: 'thing',
      description: 'one step, three in parallel, one that waits for them',
      steps: [
        { id: 'first', name: 'first', driver: 'work' },
        { id: 'a', name: 'a', driver: 'work', needs: ['first'] },
        { id: 'b', name: 'b', driver: 'work', needs: ['first'], config: { lines: 3 } },
        { id: 'c', name: 'c', driver: 'work', needs: ['first'] },
        { id: 'last', name: 'last', driver: 'work', needs: ['a', 'b', 'c'] },
      ],
    });
    await page.goto(`${base}/`);
    await page.getByTestId('role').filter({ hasText: 'no tokens' }).waitFor();
    expect(await page.getByLabel('API token').count()).toBe(0);

    const nav = page.getByRole('navigation', { name: 'Sections' });
    await nav.getByRole('link', { name: 'Pipelines' }).click();
    await page.getByRole('link', { name: 'fan' }).click();
    await page.locator('svg.graph [data-step]').nth(4).waitFor();
    expect(await page.locator('svg.graph path.edge').count()).toBe(6);
    await screenshot(page, 'pipeline');

    const { runid } = await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'fan-r', resource: 'thing', pipeline: 'fan', spec: { n: 1 } });
    await sys.waitForRun(runid);
    await page.goto(`${base}/#/runs/${runid}`);
    await page.locator('h1 [data-status="succeeded"]').waitFor();
    // Keyboard: a step of the graph is a button; Enter shows its log.
    await page.locator('svg.graph [data-step="b"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/step=b/);
    await page.locator('.log-row', { hasText: 'line 3' }).waitFor();
    // Line numbers are links to the line.
    await page.getByRole('link', { name: 'line 2', exact: true }).click();
    await page.waitForURL(/line=2/);
    await page.locator('.log-row.marked[data-line="2"]').waitFor();
    await screenshot(page, 'run-graph');

    // A resource's versions, and what changed between two of them.
    await sys.api.ok('PUT', '/resources/thing/fan-r', { spec: { n: 2, added: 'yes' } });
    await page.goto(`${base}/#/resources/thing/fan-r`);
    await page.locator('pre.diff .add', { hasText: '"added": "yes"' }).waitFor();
    await page.locator('pre.diff .del', { hasText: '"n": 1' }).waitFor();
    await screenshot(page, 'resource-diff');

    // An approval step waits for a person: the page offers Approve and Reject.
    await sys.api.ok('POST', '/pipelines', {
      name: 'gated',
      resource: 'thing',
      steps: [
        { id: 'gate', name: 'gate', driver: 'approval', approval: true },
        { id: 'deploy', name: 'deploy', driver: 'work', needs: ['gate'] },
      ],
    });
    const gated = (await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'gated-r', resource: 'thing', pipeline: 'gated', spec: {} })).runid;
    await page.goto(`${base}/#/runs/${gated}`);
    await page.locator('tr[data-step="gate"] [data-status="waiting"]').waitFor();
    await page.getByLabel('Comment on the decision for step gate').fill('looks good');
    await screenshot(page, 'run-approval');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('h1 [data-status="succeeded"]').waitFor();
    expect((await sys.api.run(gated)).steps.find((st) => st.id === 'gate')?.message).toMatch(/^approved by .*: looks good$/);

    // A failed run: its message first; "Re-run failed" runs what failed again, in a new run.
    const flag = join(mkdtempSync(join(tmpdir(), 'conveyor-web-')), 'fail');
    writeFileSync(flag, '');
    await sys.api.ok('POST', '/pipelines', {
      name: 'flaky',
      resource: 'thing',
      steps: [
        { id: 'prepare', name: 'prepare', driver: 'work' },
        { id: 'test', name: 'test', driver: 'work', config: { failWhileFile: flag } },
      ],
    });
    const failed = (await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'flaky-r', resource: 'thing', pipeline: 'flaky', spec: {} })).runid;
    await page.goto(`${base}/#/runs/${failed}`);
    await page.locator('h1 [data-status="failed"]').waitFor();
    expect(await page.getByTestId('failure').textContent()).toMatch(/^Step test failed:/);
    await screenshot(page, 'run-failed');
    rmSync(flag);
    await page.getByRole('button', { name: 'Re-run failed' }).click();
    await page.waitForURL((u) => /#\/runs\/[0-9a-z]{26}$/.test(u.hash) && !u.hash.endsWith(failed));
    await page.locator('h1 [data-status="succeeded"]').waitFor();
    const rerun = await sys.api.run(/#\/runs\/([0-9a-z]{26})$/.exec(page.url())![1]);
    expect(rerun.rerunOf).toBe(failed);
    expect(rerun.steps.find((st) => st.id === 'prepare')?.reusedFrom).toBe(failed);

    for (const [section, name, what] of [
      ['Runs', 'runs', 'table.runs'],
      ['Definitions', 'definitions', 'table.list'],
      ['Resources', 'resources', 'table.list'],
      ['Agents', 'agents', 'tr[data-agent]'],
      ['Dead letters', 'dead-letters', 'h1'],
      ['Secrets', 'secrets', 'h1'],
    ] as const) {
      await nav.getByRole('link', { name: section, exact: true }).click();
      await page.locator(what).first().waitFor();
      await screenshot(page, name);
    }
  });
});
