import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pipeline, Run } from '@conveyor/contracts';
import { TestSystem } from '../support/system';
import { NatsServer } from '../support/nats-server';
import { keptBytes } from '../drivers/behaviours';
import { waitFor } from '../support/processes';

/**
 * The `conveyor` CLI as a user runs it: the compiled program (npm run build) in a child
 * process, against a real gateway, real NATS and test driver processes.
 */
const CLI = join(__dirname, '..', '..', 'dist', 'apps', 'cli', 'src', 'main.js');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let sys: TestSystem;
let dir: string;

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...process.env, CONVEYOR_URL: sys.api.baseUrl, CONVEYOR_NATS_URL: sys.nats.url, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`conveyor ${args.join(' ')} did not end in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const MANIFESTS = `# definitions and pipelines for the CLI test
kind: ResourceDefinition
name: cli-thing
version: "1"
schema:
  type: object
  properties:
    greeting: { type: string }
---
kind: Pipeline
name: cli-pipe
resource: cli-thing
steps:
  - { id: one, name: First, driver: cli-say, config: { lines: 3 } }
  - { id: two, name: Second, driver: cli-say, config: { lines: 4 } }
---
kind: Pipeline
name: cli-fail
resource: cli-thing
steps:
  - { id: boom, name: Fails, driver: cli-say, config: { failTimes: 9 } }
  - { id: tidy, name: Cleanup, driver: cli-say, always: true }
---
kind: Pipeline
name: cli-slow
resource: cli-thing
steps:
  - { id: wait, name: Waits, driver: cli-say, config: { sleepMs: 60000 } }
  - { id: tidy, name: Cleanup, driver: cli-say, always: true }
`;

const RESOURCE = `kind: Resource
name: cli-app
resource: cli-thing
pipeline: cli-pipe
spec:
  greeting: hello
`;

beforeAll(async () => {
  // A secrets key: triggers name their webhook secret, which must be stored.
  sys = await TestSystem.on(await NatsServer.start(), {}, { CONVEYOR_SECRET_KEY: randomBytes(32).toString('base64') });
  await sys.startDriver(['cli-say']);
  dir = mkdtempSync(join(tmpdir(), 'conveyor-cli-'));
  writeFileSync(join(dir, 'a-pipelines.yaml'), MANIFESTS);
  writeFileSync(join(dir, 'b-app.yaml'), RESOURCE);
}, 60_000);

afterAll(async () => {
  await sys?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const runIdIn = (text: string) => /run ([0-9a-z]{26})/.exec(text)?.[1];

describe('conveyor CLI', () => {
  it("applies the repository's example manifests (deploy/examples/), as the README shows", async () => {
    const examples = join(__dirname, '..', '..', 'deploy', 'examples');
    const r = await cli(['apply', '-f', examples, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('definition/flutter-builder created (dry run)');
    expect(r.stdout).toContain('pipeline/flutter-pipeline created (dry run)');
    expect(r.stdout).toMatch(/resource\/flutter-builder\/example-app created \(dry run\)/);
    // The gateway takes them for real (a dry run does not check the schema).
    const applied = await cli(['apply', '-f', join(examples, 'flutter.yaml')]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toBe('definition/flutter-builder created\npipeline/flutter-pipeline created\n');
    const def = await sys.api.ok<{ schema: { properties: { ref: { description: string } } } }>('GET', '/resource-definitions/flutter-builder');
    expect(def.schema.properties.ref.description).toBe('branch, tag or commit to check out');
  });

  it('applies a directory of manifests, then reports everything unchanged; --dry-run changes nothing', async () => {
    const dry = await cli(['apply', '-f', dir, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('definition/cli-thing created (dry run)');
    expect((await sys.api.request('GET', '/pipelines/cli-pipe')).status).toBe(404);

    const first = await cli(['apply', '-f', dir]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const lines = first.stdout.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['definition/cli-thing created', 'pipeline/cli-pipe created', 'pipeline/cli-fail created', 'pipeline/cli-slow created']);
    expect(lines[4]).toMatch(/^resource\/cli-thing\/cli-app created \(version 1, run [0-9a-z]{26}\)$/);
    await sys.waitForRun(runIdIn(lines[4])!);

    const again = await cli(['apply', '-f', dir]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n')).toEqual([
      'definition/cli-thing unchanged', 'pipeline/cli-pipe unchanged', 'pipeline/cli-fail unchanged', 'pipeline/cli-slow unchanged', 'resource/cli-thing/cli-app unchanged',
    ]);

    // One change in the resource: a new version (and run); the rest stays unchanged.
    const changed = join(dir, 'b-app.yaml');
    writeFileSync(changed, RESOURCE.replace('hello', 'bonjour'));
    const third = await cli(['apply', '-f', changed]);
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/^resource\/cli-thing\/cli-app changed \(version 2, run [0-9a-z]{26}\)\n$/);
    await sys.waitForRun(runIdIn(third.stdout)!);
  }, 90_000);

  it('lists in aligned tables and as JSON and YAML', async () => {
    const table = await cli(['get', 'pipelines']);
    expect(table.code).toBe(0);
    const rows = table.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+RESOURCE\s+STEPS\s+UPDATED\s+DESCRIPTION$/);
    const pipe = rows.find((r) => r.startsWith('cli-pipe '))!;
    expect(pipe).toBeDefined();
    // Aligned: every row's RESOURCE column starts where the header's does.
    const col = rows[0].indexOf('RESOURCE');
    for (const r of rows.slice(1)) expect(r.slice(col)).toMatch(/^[a-z]/);
    expect(pipe).toContain('cli-say > cli-say');

    const json = await cli(['get', 'pipelines', '-o', 'json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as Pipeline[];
    expect(parsed.map((p) => p.name)).toEqual(expect.arrayContaining(['cli-pipe', 'cli-fail', 'cli-slow']));

    const one = await cli(['get', 'definition', 'cli-thing', '-o', 'yaml']);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('name: cli-thing');

    for (const kind of ['definitions', 'resources', 'runs', 'drivers']) {
      const r = await cli(['get', kind, '-o', 'json']);
      expect({ kind, code: r.code, stderr: r.stderr }).toEqual({ kind, code: 0, stderr: '' });
      expect(Array.isArray(JSON.parse(r.stdout))).toBe(true);
    }
    const drivers = await cli(['get', 'drivers']);
    expect(drivers.stdout).toMatch(/^AGENT\s+MACHINE\s+DRIVERS/);
    expect(drivers.stdout).toContain('cli-say');

    const missing = await cli(['get', 'pipelines', 'no-such-pipeline']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('pipeline "no-such-pipeline" not found');
    expect(missing.stderr).not.toContain('    at ');
  }, 60_000);

  it('runs a pipeline, follows its logs in order to the end, and describes it', async () => {
    const started = await cli(['run', 'cli-pipe', '--resource', 'cli-run', '--set', 'spec.greeting=hi']);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const runId = runIdIn(started.stdout)!;
    expect(runId).toBeDefined();

    const followed = await cli(['logs', runId, '-f']);
    expect(followed.code).toBe(0);
    const printed = followed.stdout.split('\n').filter((l) => / line \d+$/.test(l));
    expect(printed).toEqual([
      '[one cli-say] line 1', '[one cli-say] line 2', '[one cli-say] line 3',
      '[two cli-say] line 1', '[two cli-say] line 2', '[two cli-say] line 3', '[two cli-say] line 4',
    ]);
    expect(followed.stderr).toContain(`run ${runId} succeeded`);

    const onlyTwo = await cli(['logs', runId, '--step', 'two', '--timestamps']);
    expect(onlyTwo.code).toBe(0);
    const twoLines = onlyTwo.stdout.trim().split('\n').filter((l) => / line \d+$/.test(l));
    expect(twoLines).toHaveLength(4);
    for (const l of twoLines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\S+Z \[two cli-say\] line \d$/);

    const described = await cli(['describe', 'run', runId]);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/Status:\s+succeeded/);
    expect(described.stdout).toMatch(/Pipeline:\s+cli-pipe/);
    expect(described.stdout).toMatch(/\n\s+one\s+First\s+cli-say\s+succeeded\s+1\s+agent-\d+/);
    expect(described.stdout).toMatch(/\n\s+two\s+Second\s+cli-say\s+succeeded\s+1\s+agent-\d+/);

    const asJson = await cli(['get', 'runs', runId, '-o', 'json']);
    const run = JSON.parse(asJson.stdout) as Run;
    expect(run.status).toBe('succeeded');
    expect(run.resource).toMatchObject({ type: 'cli-thing', name: 'cli-run', version: 1 });
    const resource = await sys.api.ok('GET', '/resources/cli-thing/cli-run');
    expect(resource.spec).toEqual({ greeting: 'hi' });

    // A second run of the same resource is a new version with the change on top of the last spec.
    const second = await cli(['run', 'cli-pipe', '-r', 'cli-run', '--set', 'spec.count=3', '--follow']);
    expect(second.code).toBe(0);
    expect(second.stdout.split('\n').filter((l) => / line \d+$/.test(l))).toHaveLength(7);
    expect((await sys.api.ok('GET', '/resources/cli-thing/cli-run')).spec).toEqual({ greeting: 'hi', count: 3 });
  }, 90_000);

  it('`logs -f` prints every line of a long live run once, in order', async () => {
    await sys.api.ok('POST', '/pipelines', {
      name: 'cli-many',
      resource: 'cli-thing',
      steps: [
        { id: 'a', name: 'A', driver: 'cli-say', config: { lines: 300, sleepMs: 300 } },
        { id: 'b', name: 'B', driver: 'cli-say', config: { lines: 300 } },
      ],
    });
    const r = await cli(['run', 'cli-many', '-r', 'cli-many-app', '--follow']);
    expect(r.code).toBe(0);
    const got = r.stdout.split('\n').filter((l) => / line \d+$/.test(l));
    const want = ['a', 'b'].flatMap((step) => Array.from({ length: 300 }, (_, i) => `[${step} cli-say] line ${i + 1}`));
    expect(got).toEqual(want);
  }, 60_000);

  it('exits 1 when a followed run fails', async () => {
    const r = await cli(['run', 'cli-fail', '-r', 'cli-failing', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/run [0-9a-z]{26} failed/);
  }, 60_000);

  it('cancels a run; following it exits 130; a second cancel is a clear 409', async () => {
    const started = await cli(['run', 'cli-slow', '-r', 'cli-slow-app']);
    const runId = runIdIn(started.stdout)!;
    await waitFor('the slow step to run', async () => ((await sys.api.run(runId)).steps[0].status === 'running' ? true : undefined), 30_000, 100);
    const following = cli(['logs', runId, '-f']);
    const cancelled = await cli(['cancel', runId]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toBe(`run ${runId} cancel requested\n`);
    const followed = await following;
    expect(followed.code).toBe(130);
    expect((await sys.waitForRun(runId)).status).toBe('cancelled');
    const again = await cli(['cancel', runId]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error: POST \/runs\/[0-9a-z]{26}\/cancel: 409 /);
  }, 60_000);

  it('shows a line-numbered error and exits 2 for bad YAML and for a manifest the gateway refuses', async () => {
    const badYaml = join(dir, 'bad.yaml');
    writeFileSync(badYaml, 'kind: Pipeline\nname: x\nsteps:\n  - id: a\n   driver: b\n');
    const r1 = await cli(['apply', '-f', badYaml]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(new RegExp(`^error: ${badYaml.replace(/[.]/g, '\\.')}:5: invalid YAML`));

    const refused = join(dir, 'refused.yaml');
    writeFileSync(refused, [
      'kind: Pipeline',
      'name: cli-refused',
      'resource: cli-thing',
      'steps:',
      '  - id: a',
      '    name: A',
      '    driver: cli-say',
      '  - id: b',
      '    name: B',
      '    driver: "Not A Name"',
      '',
    ].join('\n'));
    const r2 = await cli(['apply', '-f', refused]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${refused}:1: pipeline "cli-refused" refused by the gateway (400): `);
    // The failing field's own line, from the gateway's validation details.
    expect(r2.stderr).toMatch(new RegExp(`${refused.replace(/[.]/g, '\\.')}:10: steps\\.1\\.driver`));
    expect((await sys.api.request('GET', '/pipelines/cli-refused')).status).toBe(404);

    const noKind = join(dir, 'nokind.yaml');
    writeFileSync(noKind, '# comment\n\nname: lonely\n');
    const r3 = await cli(['apply', '-f', noKind]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain(`${noKind}:3: "kind" is missing`);

    const usage = await cli(['logs']);
    expect(usage.code).toBe(2);
    const noGateway = await cli(['get', 'runs'], { CONVEYOR_URL: 'http://127.0.0.1:1' });
    expect(noGateway.code).toBe(2);
    expect(noGateway.stderr).toContain('cannot reach the gateway at http://127.0.0.1:1');
  }, 60_000);

  it("`events --run` prints a run's log in order, and `events` tails live traffic", async () => {
    const live = cli(['events', '--count', '3', '--timeout', '30s']);
    // The tail subscribes asynchronously; keep starting runs (bounded) until it has seen its 3 messages.
    let liveResult: CliResult | undefined;
    void live.then((r) => (liveResult = r));
    for (let i = 0; i < 20 && !liveResult; i++) {
      await sys.waitForRun(runIdIn((await cli(['run', 'cli-pipe', '-r', `cli-events-${i}`])).stdout)!);
    }
    const tail = await live;
    expect(tail.code).toBe(0);
    expect(tail.stdout.trim().split('\n')).toHaveLength(3);

    const started = await cli(['run', 'cli-pipe', '-r', 'cli-events']);
    const runId = runIdIn(started.stdout)!;
    await sys.waitForRun(runId);
    const r = await cli(['events', '--run', runId, '--timeout', '30s']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => l.replace(/^\S+\s+run\s+[0-9a-z]{26}\s+/, '').replace(/\s+attempt=[^;]*/g, ''));
    // A first delivery is not claimed (its start is recorded beside the log, when the step is
    // still running at the end of its first turn): the log is the hand-offs.
    expect(lines).toEqual([
      'queued; step one (cli-say) next',
      'step one (cli-say) succeeded; step two (cli-say) next',
      'step two (cli-say) succeeded; run succeeded',
    ]);
  }, 120_000);

  it('applies a Schedule manifest (created, then unchanged, then changed) and lists schedules', async () => {
    const file = join(dir, 'schedule.yaml');
    const manifest = `kind: ResourceDefinition\nname: cli-sched-thing\nschema: { type: object }\n---\nkind: Pipeline\nname: cli-sched-pipe\nresource: cli-sched-thing\nsteps:\n  - { id: one, name: First, driver: cli-say }\n---\nkind: Schedule\nname: cli-nightly\ncron: "0 3 * * *"\ntimezone: Europe/Berlin\nresource: cli-sched-thing\npipeline: cli-sched-pipe\nspec: {}\n`;
    writeFileSync(file, manifest);
    const first = await cli(['apply', '-f', file]);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/\nschedule\/cli-nightly created \(next \d{4}-\d\d-\d\dT0[12]:00:00\.000Z\)\n$/);
    expect((await cli(['apply', '-f', file])).stdout).toContain('schedule/cli-nightly unchanged');
    // Without its zone it is a change (the gateway's default is UTC).
    writeFileSync(file, manifest.replace('timezone: Europe/Berlin\n', ''));
    expect((await cli(['apply', '-f', file])).stdout).toMatch(/schedule\/cli-nightly changed \(next \S+T03:00:00\.000Z\)/);
    const listed = await cli(['get', 'schedules']);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^NAME\s+CRON\s+TIMEZONE\s+PIPELINE\s+RESOURCE\s+NEXT\s+LAST\s+LAST RUN$/);
    expect(listed.stdout).toMatch(/cli-nightly\s+0 3 \* \* \*\s+UTC\s+cli-sched-pipe\s+cli-sched-thing\/cli-nightly\s+\S+T03:00:00\.000Z\s+-\s+-/);
    const one = JSON.parse((await cli(['get', 'schedule', 'cli-nightly', '-o', 'json'])).stdout);
    expect(one).toMatchObject({ name: 'cli-nightly', last: null });
    await sys.api.ok('DELETE', '/schedules/cli-nightly');
  }, 60_000);

  it('applies a Trigger manifest (created with its hook, unchanged, changed), lists triggers, and shows a refused one at its line', async () => {
    await sys.api.ok('PUT', '/secrets/cli-hook-secret', { value: 'shh' });
    const file = join(dir, 'trigger.yaml');
    const manifest = `kind: Trigger\nname: cli-push\nsource: gitea\nsecret: cli-hook-secret\nbranches: [main, "release/*"]\nresource: cli-thing\npipeline: cli-pipe\nspec:\n  greeting: from a push\n`;
    writeFileSync(file, manifest);
    const first = await cli(['apply', '-f', file]);
    expect(first).toMatchObject({ code: 0, stdout: 'trigger/cli-push created (hook /hooks/cli-push)\n', stderr: '' });
    expect((await cli(['apply', '-f', file])).stdout).toBe('trigger/cli-push unchanged\n');
    writeFileSync(file, manifest.replace('[main, "release/*"]', '[main]'));
    expect((await cli(['apply', '-f', file])).stdout).toBe('trigger/cli-push changed\n');
    expect((await sys.api.ok<any>('GET', '/triggers/cli-push')).branches).toEqual(['main']);

    const listed = await cli(['get', 'triggers']);
    expect(listed.code).toBe(0);
    const [head, row] = listed.stdout.trimEnd().split('\n');
    expect(head).toMatch(/^NAME\s+SOURCE\s+EVENTS\s+BRANCHES\s+PIPELINE\s+HOOK\s+LAST\s+LAST RUN$/);
    expect(row).toMatch(/^cli-push\s+gitea\s+push\s+main\s+cli-pipe\s+\/hooks\/cli-push\s+-\s+-$/);
    expect(JSON.parse((await cli(['get', 'trigger', 'cli-push', '-o', 'json'])).stdout)).toMatchObject({ name: 'cli-push', hook: '/hooks/cli-push', spec: { greeting: 'from a push' } });
    // PUT replaces the whole trigger: a field dropped from the manifest is a change, and every branch runs again.
    writeFileSync(file, manifest.replace('branches: [main, "release/*"]\n', ''));
    expect((await cli(['apply', '-f', file])).stdout).toBe('trigger/cli-push changed\n');
    expect((await sys.api.ok<any>('GET', '/triggers/cli-push')).branches).toBeUndefined();
    expect((await cli(['get', 'triggers'])).stdout.trimEnd().split('\n')[1]).toMatch(/^cli-push\s+gitea\s+push\s+\*\s+cli-pipe\s/);
    expect((await cli(['apply', '-f', file])).stdout).toBe('trigger/cli-push unchanged\n');

    // A secret that is not stored: the gateway's 400, at the manifest's line.
    writeFileSync(file, `# a trigger\n${manifest.replace('cli-push', 'cli-other').replace('cli-hook-secret', 'no-such-secret')}`);
    const refused = await cli(['apply', '-f', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`error: ${file}:2: trigger "cli-other" refused by the gateway (400): the trigger names secret "no-such-secret" that does not exist; create it with PUT /secrets/<name>\n`);
    await sys.api.ok('DELETE', '/triggers/cli-push');
  }, 60_000);

  it("lists a run's artifacts and downloads one byte for byte (to a file, to stdout), refusing to overwrite and naming what is missing", async () => {
    await sys.api.ok('POST', '/pipelines', { name: 'cli-keep', resource: 'cli-thing', steps: [{ id: 'make', name: 'Make', driver: 'cli-say', config: { keep: { name: 'dist/app.bin', bytes: 300_000 } } }] });
    const { runid } = await sys.api.ok<{ runid: string }>('POST', '/resources', { name: 'cli-kept', resource: 'cli-thing', pipeline: 'cli-keep', spec: {} });
    expect((await sys.waitForRun(runid)).status).toBe('succeeded');
    const bytes = keptBytes(runid, 300_000);
    const sha = createHash('sha256').update(bytes).digest('hex');

    const listed = await cli(['artifacts', runid]);
    expect(listed.code).toBe(0);
    const [head, row] = listed.stdout.trimEnd().split('\n');
    expect(head).toMatch(/^NAME\s+STEP\s+SIZE\s+SHA256\s+CREATED$/);
    expect(row).toMatch(new RegExp(`^dist/app\\.bin\\s+make\\s+293 KiB\\s+${sha.slice(0, 12)}\\s+\\S+ ago$`));
    expect(JSON.parse((await cli(['artifacts', runid, '-o', 'json'])).stdout)).toEqual([expect.objectContaining({ name: 'dist/app.bin', size: 300_000, sha256: sha })]);

    const out = join(dir, 'app.bin');
    const got = await cli(['artifacts', runid, 'dist/app.bin', '-o', out]);
    expect(got).toMatchObject({ code: 0, stdout: `${out}: 293 KiB, sha256 ${sha} (checked)\n` });
    expect(readFileSync(out).equals(bytes)).toBe(true);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const again = await cli(['artifacts', runid, 'dist/app.bin', '-o', out]);
    expect(again).toMatchObject({ code: 2, stderr: `error: ${out} exists; use --force to replace it, or -o to write elsewhere\n` });
    expect((await cli(['artifacts', runid, 'dist/app.bin', '-o', out, '--force'])).code).toBe(0);
    const piped = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'artifacts', runid, 'dist/app.bin', '-o', '-'], { env: { ...process.env, CONVEYOR_URL: sys.api.baseUrl }, stdio: ['ignore', 'pipe', 'inherit'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`exit ${code}`))));
    });
    expect(piped.equals(bytes)).toBe(true);

    const missing = await cli(['artifacts', runid, 'dist/nope.bin', '-o', join(dir, 'nope.bin')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`error: GET /runs/${runid}/artifacts/dist/nope.bin: 404 run ${runid} has no artifact "dist/nope.bin"\n`);
    expect(existsSync(join(dir, 'nope.bin'))).toBe(false);
    expect(existsSync(join(dir, 'nope.bin.partial'))).toBe(false);

    // Without -o: the artifact's base name in the current directory, never replaced without --force.
    const here = mkdtempSync(join(tmpdir(), 'conveyor-cli-here-'));
    try {
      expect((await cli(['artifacts', runid, 'dist/app.bin'], {}, 60_000, here)).stdout).toBe(`app.bin: 293 KiB, sha256 ${sha} (checked)\n`);
      expect(readFileSync(join(here, 'app.bin')).equals(bytes)).toBe(true);
      expect((await cli(['artifacts', runid, 'dist/app.bin'], {}, 60_000, here)).stderr).toBe('error: app.bin exists; use --force to replace it, or -o to write elsewhere\n');
    } finally {
      rmSync(here, { recursive: true, force: true });
    }
  }, 60_000);

  it('keeps no file when the bytes do not match the ETag sha256 or the download is cut off', async () => {
    // A stand-in gateway: the real one cannot be made to send wrong bytes.
    const body = Buffer.alloc(100_000, 'a');
    const server = createServer((req, res) => {
      if (req.url === '/runs/r1/artifacts/out/bad.bin') {
        res.writeHead(200, { etag: `"${createHash('sha256').update('other bytes').digest('hex')}"`, 'content-length': String(body.length) }).end(body);
      } else {
        // Promises more bytes than it sends, then hangs up.
        res.writeHead(200, { etag: `"${createHash('sha256').update(body).digest('hex')}"`, 'content-length': String(body.length * 2) });
        res.write(body, () => res.destroy());
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const env = { CONVEYOR_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
      const bad = join(dir, 'bad.bin');
      const mismatch = await cli(['artifacts', 'r1', 'out/bad.bin', '-o', bad], env);
      expect(mismatch.code).toBe(2);
      expect(mismatch.stderr).toMatch(/^error: out\/bad\.bin of run r1: the bytes received \(sha256 [0-9a-f]{12}, 98 KiB\) are not the artifact's \(sha256 [0-9a-f]{12}\); nothing was kept\n$/);
      const cut = await cli(['artifacts', 'r1', 'out/cut.bin', '-o', bad], env);
      expect(cut.code).toBe(2);
      expect(cut.stderr).toMatch(/^error: downloading out\/cut\.bin of run r1 failed after /);
      expect([existsSync(bad), existsSync(`${bad}.partial`)]).toEqual([false, false]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 30_000);

  it('sends CONVEYOR_TOKEN as a bearer token and shows a 401 as the server words it', async () => {
    const seen: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 401, error: 'Unauthorized', message: 'a valid API token is required' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await cli(['get', 'runs'], { CONVEYOR_URL: url, CONVEYOR_TOKEN: 's3cret-token' });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('error: GET /runs?limit=50: 401 a valid API token is required\n');
      expect(seen).toEqual(['Bearer s3cret-token']);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 30_000);
});
