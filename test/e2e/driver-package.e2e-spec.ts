import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppProcess } from '../support/processes';
import { BuiltinDriverFleet } from '../support/builtin-drivers';
import { TestSystem } from '../support/system';

jest.setTimeout(240_000);

const ROOT = join(__dirname, '..', '..');
const PACKAGE = join(ROOT, 'dist', 'packages', 'driver-sdk');
const CLI = join(ROOT, 'dist', 'apps', 'cli', 'src', 'main.js');

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a command to its end (bounded: killed after `timeoutMs`), stdout and stderr together. */
function sh(cmd: string, args: string[], cwd: string, timeoutMs: number, env: Record<string, string> = {}): Promise<Ran> {
  // Not the npm_* settings of the npm that started jest: the project is installed as a user would.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  const proc = spawn(cmd, args, { cwd, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => {
    output += `\n[test] ${cmd} ${args.join(' ')} still running after ${timeoutMs} ms: killed\n`;
    proc.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

function ok(r: Ran, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.output}`);
  return r.output;
}

/**
 * The driver SDK as someone outside this repository uses it: the package packed (npm pack), a
 * project made by `conveyor new driver` in a directory that never saw the repository, the
 * tarball installed there from the npm cache/registry, the project's own test, and then its
 * driver in a running system, in a pipeline with a test driver and a built-in driver.
 */
describe('the driver SDK package and `conveyor new driver`', () => {
  let tmp: string;
  let sys: TestSystem | undefined;
  let greeter: AppProcess | undefined;
  let fleet: BuiltinDriverFleet | undefined;
  const timings: string[] = [];
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      timings.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
  };

  beforeAll(() => {
    for (const f of [join(PACKAGE, 'package.json'), CLI]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
    tmp = mkdtempSync(join(tmpdir(), 'conveyor-driver-package-'));
  });
  afterAll(async () => {
    await greeter?.stop('SIGKILL');
    await fleet?.stop();
    await sys?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    process.stdout.write(`driver-package timings: ${timings.join(', ')}\n`);
  });

  it('packs, scaffolds, installs, passes its own test, and runs in a pipeline beside a test driver and a built-in driver', async () => {
    // 1. The package, packed as it would be published.
    ok(await timed('pack', () => sh('npm', ['pack', PACKAGE, '--pack-destination', tmp], tmp, 60_000)), 'npm pack');
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^conveyor-driver-sdk-\d+\.\d+\.\d+.*\.tgz$/);
    // The protocol and the JSON Schemas of its messages travel with it.
    const listed = ok(await sh('tar', ['-tzf', join(tmp, tarball!)], tmp, 20_000), 'tar -t');
    expect(listed).toContain('package/PROTOCOL.md');
    expect(listed).toContain('package/schemas/step-message.schema.json');

    // 2. A project from the scaffold, depending on that tarball.
    const project = join(tmp, 'greeter');
    const made = ok(await sh(process.execPath, [CLI, 'new', 'driver', 'greeter', '--dir', project, '--sdk', join(tmp, tarball!)], tmp, 20_000), 'conveyor new driver');
    expect(made).toContain(`wrote driver "greeter" in ${project}`);
    // Scaffolding over it again is refused: it is no longer empty.
    const again = await sh(process.execPath, [CLI, 'new', 'driver', 'greeter', '--dir', project], tmp, 20_000);
    expect([again.code, again.output.trim()]).toEqual([2, `error: ${project} exists and is not an empty directory: choose another --dir`]);

    // 3. Installed, its test run (it starts its own nats-server), built.
    ok(await timed('npm install', () => sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], project, 180_000)), 'npm install');
    expect(existsSync(join(project, 'node_modules', '@conveyor', 'driver-sdk', 'package.json'))).toBe(true);
    const tested = ok(await timed('npm test', () => sh('npm', ['test'], project, 90_000, { NATS_SERVER_BIN: process.env.NATS_SERVER_BIN || 'nats-server' })), 'npm test');
    expect(tested).toMatch(/# pass 1\b/);
    expect(tested).toMatch(/# fail 0\b/);
    ok(await sh('npm', ['run', 'build'], project, 60_000), 'npm run build');

    // 4. Its driver in a running system, after a test driver's step and before a built-in driver's (container-stop).
    await timed('system and run', async () => {
      sys = await TestSystem.start();
      await sys.startDriver(['pkg-noop']);
      fleet = new BuiltinDriverFleet(sys.nats.url);
      await fleet.start('container-stop');
      greeter = await AppProcess.start('greeter', join(project, 'dist', 'main.js'), {
        CONVEYOR_NATS_URL: sys.nats.url,
        CONVEYOR_AGENT_ID: 'greeter-agent',
        CONVEYOR_ACK_WAIT: '3s',
        CONVEYOR_HEARTBEAT_INTERVAL: '1s',
        CONVEYOR_DRAIN_TIMEOUT: '10s',
      }, 'Nest microservice successfully started');
      const id = await sys.run([{ driver: 'pkg-noop' }, { id: 'greet', driver: 'greeter', config: { greet: 'pipeline' } }, { id: 'stop', driver: 'container-stop' }]);
      const run = await sys.waitForRun(id, ['succeeded', 'failed', 'cancelled'], 30_000);
      expect(run.status).toBe('succeeded');
      expect(run.steps.map((s) => [s.id, s.status])).toEqual([['s1', 'succeeded'], ['greet', 'succeeded'], ['stop', 'succeeded']]);
      expect(run.steps[2].data).toMatchObject({ removed: false });
      expect(run.steps[1]).toMatchObject({ agent: 'greeter-agent', message: 'greeted pipeline', data: { greeting: 'hello, pipeline', after: ['s1'] } });
      const lines = await sys.api.ok<Array<{ line: string; driver: string }>>('GET', `/logs?runid=${id}&driver=greeter`);
      expect(lines.map((l) => l.line)).toContain('hello, pipeline');
      // SIGTERM drains and exits 0, as the SDK's own drivers do.
      expect(await greeter.stop('SIGTERM', 20_000)).toBe(0);
    });
  });
});
