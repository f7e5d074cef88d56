import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Run } from '@conveyor/contracts';
import { BuildSystem, stepOf } from '../support/build-system';
import { TestBrowser, screenshot } from '../support/browser';
import { tutorialPipeline } from '../support/builtin-drivers';
import { NatsServer } from '../support/nats-server';
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
/** Secrets (a trigger's webhook secret) are stored only with a key. */
const SECRET_KEY = randomBytes(32).toString('base64');
const HOOK_SECRET = `hook-${randomBytes(12).toString('hex')}`;

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

  it("lists a run's artifacts and downloads one with the token (a plain link would be refused)", async () => {
    await signedInAs(WRITER, 'write');
    const numbers = Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join('');
    const runId = (
      await build.sys.api.ok<{ runid: string }>('POST', '/resources', {
        name: `web-art-${randomBytes(3).toString('hex')}`,
        resource: 'app',
        pipeline: 'web',
        spec: { repository: build.repo.url, commands: ['mkdir -p out', 'seq 1 1000 > out/numbers.txt'], artifacts: ['out/*.txt'] },
      })
    ).runid;
    expect((await build.sys.waitForRun(runId, undefined, 120_000)).status).toBe('succeeded');
    // The API itself refuses the artifact without a token: the page must send it.
    expect((await fetch(`${base}/runs/${runId}/artifacts/out/numbers.txt`)).status).toBe(401);
    await page.goto(`${base}/#/runs/${runId}`);
    const row = page.locator('tr[data-artifact="out/numbers.txt"]');
    await row.waitFor();
    expect(await page.getByRole('heading', { name: 'Artifacts' }).count()).toBe(1);
    expect(await row.locator('td').first().textContent()).toBe('build');
    expect(await row.locator('td').nth(1).getAttribute('title')).toBe(`${numbers.length} bytes`);
    const download = page.waitForEvent('download');
    await row.getByRole('link', { name: 'out/numbers.txt' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe('numbers.txt');
    expect(readFileSync((await file.path())!, 'utf8')).toBe(numbers);
    await screenshot(page, 'run-artifacts');
  });

  it('a run whose build kept nothing shows no Artifacts section; a reader sees schedules without a delete button', async () => {
    await signedInAs(WRITER, 'write');
    const runId = await startApp('web', ['echo nothing kept']);
    expect((await build.sys.waitForRun(runId, undefined, 120_000)).status).toBe('succeeded');
    expect(await build.sys.api.ok<unknown[]>('GET', `/runs/${runId}/artifacts`)).toEqual([]);
    await page.goto(`${base}/#/runs/${runId}`);
    await page.locator('h1 [data-status="succeeded"]').waitFor();
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    expect(await page.getByRole('heading', { name: 'Artifacts' }).count()).toBe(0);

    await build.sys.api.ok('POST', '/schedules', { name: 'yearly', cron: '0 0 1 1 *', resource: 'app', pipeline: 'web', spec: { repository: build.repo.url, commands: ['true'] } });
    await signOut();
    await signIn(READER, 'read');
    await page.goto(`${base}/#/schedules/yearly`);
    await page.getByRole('heading', { name: 'Schedule yearly' }).waitFor();
    expect(await page.getByRole('button', { name: 'Delete', exact: true }).count()).toBe(0);
    await signOut();
    await signIn(WRITER, 'write');
  });
});

describe('the web dashboard without API tokens (loopback)', () => {
  let sys: TestSystem;
  let browser: TestBrowser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_SECRET_KEY: SECRET_KEY });
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

  it('schedules and webhook triggers: their lists and pages, the hook URL, a hook-started and a scheduled run saying so, delete with a confirm', async () => {
    await sys.api.ok('POST', '/pipelines', { name: 'hooked', resource: 'thing', steps: [{ id: 'one', name: 'one', driver: 'work' }] });
    await sys.api.ok('PUT', '/secrets/web-hook-secret', { value: HOOK_SECRET });
    // Far in the future: it never ticks during the test.
    const yearly = await sys.api.ok<{ next: string }>('POST', '/schedules', { name: 'new-year', cron: '0 0 1 1 *', timezone: 'Europe/Berlin', resource: 'thing', pipeline: 'hooked', spec: { n: 7 } });
    await sys.api.ok('POST', '/triggers', {
      name: 'web-hook',
      source: 'generic',
      secret: 'web-hook-secret',
      events: ['push'],
      branches: ['main', 'release/*'],
      resource: 'thing',
      pipeline: 'hooked',
      resourceName: 'hook-${{ branch }}',
      spec: { from: 'hook' },
      // Port 9 (discard): nothing there, so nothing is ever posted anywhere.
      status: { api: 'http://127.0.0.1:9/api/v1', forge: 'gitea', project: 'acme/app', token: 'web-hook-secret', context: 'ci/web' },
    });

    await page.goto(`${base}/`);
    const nav = page.getByRole('navigation', { name: 'Sections' });
    await nav.getByRole('link', { name: 'Schedules', exact: true }).click();
    const row = page.locator('tr[data-schedule="new-year"]');
    await row.waitFor();
    expect(await row.locator('code.cron').textContent()).toBe('0 0 1 1 *');
    expect(await row.locator('td.next time').getAttribute('datetime')).toBe(yearly.next);
    expect(await row.locator('td.next').textContent()).toMatch(/Europe\/Berlin in \d+ days$/);
    expect(await row.locator('td.last').textContent()).toBe('not yet');
    await screenshot(page, 'schedules');
    await row.getByRole('link', { name: 'new-year', exact: true }).click();
    await page.getByRole('heading', { name: 'Schedule new-year' }).waitFor();
    expect(await page.locator('dd.next time').getAttribute('datetime')).toBe(yearly.next);
    expect(await page.getByLabel('Spec of schedule new-year').textContent()).toContain('"n": 7');
    await screenshot(page, 'schedule');

    await nav.getByRole('link', { name: 'Triggers', exact: true }).click();
    const trow = page.locator('tr[data-trigger="web-hook"]');
    await trow.waitFor();
    const hookUrl = `${base}/hooks/web-hook`;
    expect(await trow.getByTestId('hook-url').textContent()).toBe(hookUrl);
    expect(await trow.locator('td').nth(2).textContent()).toBe('main, release/*');
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await trow.getByRole('button', { name: 'Copy the hook URL of web-hook' }).click();
    await trow.getByRole('button', { name: 'Copy the hook URL of web-hook' }).filter({ hasText: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(hookUrl);
    expect(await trow.locator('td.last').textContent()).toBe('none yet');

    // A signed generic delivery, as deploy/git/post-receive sends it, to the URL the page shows.
    const commit = randomBytes(20).toString('hex');
    const body = JSON.stringify({ ref: 'refs/heads/main', commit, repository: 'https://git.example/app.git', sender: 'alice', message: 'a change' });
    const delivery = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-conveyor-delivery': randomUUID(), 'x-conveyor-signature-256': `sha256=${createHmac('sha256', HOOK_SECRET).update(body).digest('hex')}` },
      body,
    });
    expect(delivery.status).toBe(202);
    const { runid } = (await delivery.json()) as { runid: string };
    await sys.waitForRun(runid);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await trow.locator('td.last [data-status="started"]').waitFor();
    expect(await trow.locator('td.last').getByRole('link', { name: runid }).count()).toBe(1);
    await screenshot(page, 'webhook-triggers');

    await trow.getByRole('link', { name: 'web-hook', exact: true }).click();
    await page.getByRole('heading', { name: 'Trigger web-hook' }).waitFor();
    expect(await page.getByTestId('hook-url').textContent()).toBe(hookUrl);
    expect(await page.getByTestId('status-target').textContent()).toBe('gitea API http://127.0.0.1:9/api/v1, project acme/app, context ci/web, token from secret web-hook-secret');
    expect(await page.locator('dd', { hasText: 'hook-${{ branch }}' }).count()).toBe(1);
    expect(await page.getByLabel('Spec of trigger web-hook').textContent()).toContain('"from": "hook"');
    await screenshot(page, 'webhook-trigger');

    await page.locator('dd.last').getByRole('link', { name: runid }).click();
    await page.locator('h1 [data-status="succeeded"]').waitFor();
    const origin = page.getByTestId('origin');
    await origin.waitFor();
    expect(await origin.textContent()).toBe(`trigger web-hook: push of main at ${commit.slice(0, 7)} by alice`);
    expect(await origin.locator('code.commit').getAttribute('title')).toBe(commit);
    // Its commit status goes to port 9, which fetch refuses outright: the run's page shows it given up on, and why.
    const reports = page.getByRole('table', { name: 'Reports of the run' });
    await reports.locator('tbody tr').first().waitFor();
    const report = await reports.locator('tbody tr').first().textContent();
    expect(report).toMatch(/^commit statuspendinghttp:\/\/127\.0\.0\.1:9\/api\/v1\/repos\/acme\/app\/statuses\/[0-9a-f]{40}failed1.+port 9 is one that fetch refuses to connect to \(bad port\); use another$/);
    await screenshot(page, 'run-triggered');
    await origin.getByRole('link', { name: 'web-hook', exact: true }).click();
    await page.getByRole('heading', { name: 'Trigger web-hook' }).waitFor();

    // A schedule that ticks every 2 seconds: its first run says where it came from; then it is deleted from its page.
    await sys.api.ok('POST', '/schedules', { name: 'ticking', cron: '*/2 * * * * *', resource: 'thing', pipeline: 'hooked', spec: { n: 1 } });
    const ticked = await waitFor('a tick of schedule ticking to start a run', async () => (await sys.api.ok<{ last: { runid?: string } | null }>('GET', '/schedules/ticking')).last?.runid, 30_000, 200);
    await page.goto(`${base}/#/runs/${ticked}`);
    await origin.waitFor();
    expect(await origin.textContent()).toMatch(/^Scheduled by ticking \(the tick due .+\)$/);
    await screenshot(page, 'run-scheduled');
    await origin.getByRole('link', { name: 'ticking', exact: true }).click();
    await page.getByRole('heading', { name: 'Schedule ticking' }).waitFor();
    await page.locator('dd.last a.mono').first().waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('button', { name: 'Keep it' }).click();
    expect((await sys.api.request('GET', '/schedules/ticking')).status).toBe(200);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await screenshot(page, 'schedule-delete');
    await page.getByRole('button', { name: 'Delete the schedule' }).click();
    await page.waitForURL(/#\/schedules$/);
    await page.locator('tr[data-schedule="new-year"]').waitFor();
    expect(await page.locator('tr[data-schedule="ticking"]').count()).toBe(0);
    expect((await sys.api.request('GET', '/schedules/ticking')).status).toBe(404);
  });
});
