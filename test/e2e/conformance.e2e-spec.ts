import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `conveyor conformance` as a user runs it (the compiled CLI, npm run build): each run starts
 * its own nats-server, gateway and driver process. A built-in driver and a test driver (SDK
 * drivers in conformance mode), the raw example driver (no SDK) pass every scenario; the
 * driver that acks before its hand-off fails, by name. The kits run side by side.
 */
const DIST = join(__dirname, '..', '..', 'dist');
const CLI = join(DIST, 'apps', 'cli', 'src', 'main.js');
const SCENARIO_COUNT = 10;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function conformance(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'conformance', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`conveyor conformance ${args.join(' ')} did not end in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The table's row of a scenario: its result word. */
function resultOf(stdout: string, scenario: string): string | undefined {
  return stdout.split('\n').find((l) => l.startsWith(`${scenario} `))?.slice(scenario.length).trim().split(/\s+/)[0];
}

const node = process.execPath;
const kits = {
  builtin: () => conformance(['--driver', 'container-stop', '--', node, join(DIST, 'apps', 'container-stop', 'src', 'main.js')]),
  testDriver: () => conformance(['--driver', 'conf-test', '--', 'env', 'TEST_DRIVERS=conf-test', node, join(DIST, 'test', 'drivers', 'main.js')]),
  raw: () => conformance(['--driver', 'raw', '--', node, join(DIST, 'examples', 'raw-driver', 'main.js')]),
  wrong: () => conformance(['--driver', 'acks-early', '--', node, join(DIST, 'test', 'conformance', 'acks-before-hand-off.js')]),
  go: () => conformance(['--driver', 'go-raw', '--', buildGoDriver()]),
};

/**
 * examples/go-driver, built with Debian's Go toolchain and packaged nats.go in GOPATH mode (no
 * module download; test/run.sh installs golang-go and golang-github-nats-io-go-nats-dev).
 */
function buildGoDriver(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'conveyor-go-driver-')), 'go-driver');
  const built = spawnSync('go', ['build', '-o', out, './examples/go-driver'], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (built.error || built.status !== 0) {
    throw new Error(`could not build examples/go-driver (needs golang-go and golang-github-nats-io-go-nats-dev, as test/run.sh installs): ${built.error?.message ?? built.stderr}`);
  }
  return out;
}
let running: Record<keyof typeof kits, Promise<Result>>;

beforeAll(() => {
  const builtin = kits.builtin();
  running = {
    builtin,
    testDriver: kits.testDriver(),
    raw: kits.raw(),
    wrong: kits.wrong(),
    // After one of the others, so that at most four kits run at once on a small machine.
    go: builtin.catch(() => undefined).then(() => kits.go()),
  };
  // Rejections are awaited by the tests; none is left unhandled meanwhile.
  for (const p of Object.values(running)) p.catch(() => undefined);
});

describe('conveyor conformance', () => {
  it.each([
    ['a built-in driver (container-stop, in conformance mode)', 'builtin'],
    ['a test driver built on the SDK', 'testDriver'],
    ['the raw example driver (no SDK)', 'raw'],
    ['the Go example driver (nats.go, no SDK)', 'go'],
  ] as const)('passes %s in every scenario, exit 0', async (_what, kit) => {
    const r = await running[kit];
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: expect.stringContaining(`${SCENARIO_COUNT} of ${SCENARIO_COUNT} scenarios passed`) });
    for (const name of ['success-with-data', 'failure', 'throw', 'retry', 'timeout', 'cancel', 'poison-message', 'log-order', 'ack-after-hand-off', 'sigkill-redelivery']) {
      expect([name, resultOf(r.stdout, name)]).toEqual([name, 'pass']);
    }
  }, 150_000);

  it('fails a driver that acks before its hand-off, naming that scenario, exit 1', async () => {
    const r = await running.wrong;
    expect(r.code).toBe(1);
    expect(resultOf(r.stdout, 'ack-after-hand-off')).toBe('FAIL');
    expect(r.stdout).toMatch(/ack-after-hand-off\s+FAIL.*step a: its message \(stream seq \d+\) was acked before its hand-off/);
    expect(r.stdout).toContain(`${SCENARIO_COUNT - 1} of ${SCENARIO_COUNT} scenarios passed`);
  }, 150_000);

  it('exits 2 with a clear message on usage errors, starting nothing', async () => {
    const [badName, noCommand, badTimeout, noServer] = await Promise.all([
      conformance(['--driver', 'Not_A_Name', '--', node, '-e', '0']),
      conformance(['--driver', 'x']),
      conformance(['--driver', 'x', '--timeout', 'soon', '--', node, '-e', '0']),
      conformance(['--driver', 'x', '--', node, '-e', '0'], { NATS_SERVER_BIN: '/nonexistent/nats-server' }),
    ]);
    expect([badName.code, badName.stderr]).toEqual([2, expect.stringContaining('--driver "Not_A_Name": a driver name is lowercase letters')]);
    expect([noCommand.code, noCommand.stderr]).toEqual([2, expect.stringContaining("missing required argument 'command'")]);
    expect([badTimeout.code, badTimeout.stderr]).toEqual([2, expect.stringContaining('--timeout must be a positive number of seconds')]);
    expect([noServer.code, noServer.stderr]).toEqual([2, expect.stringContaining('NATS_SERVER_BIN=/nonexistent/nats-server: no such file')]);
  }, 60_000);
});
