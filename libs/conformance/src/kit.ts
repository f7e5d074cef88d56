import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { isName, NAME_RULE, Subjects } from '@conveyor/contracts';
import { Failed, Probe, RESOURCE_TYPE } from './probe';
import { SCENARIOS, type Hands, type Scenario } from './scenarios';
import { driverEnv, poll, SetupError, startDriver, startGateway, startNats, type Child } from './stack';
import { WireWatch } from './wire';

export interface ConformanceOptions {
  /** The driver name the scenarios' steps use, given to the driver as CONVEYOR_DRIVER_NAME. */
  driver: string;
  /** The driver under test: a program and its arguments. */
  command: string[];
  /** Bound of each wait of a scenario. */
  timeoutMs: number;
  /** Only these scenarios (all by default). */
  only?: string[];
  /** Progress lines. */
  say?: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  checks: string;
  passed: boolean;
  ms: number;
  reason?: string;
}

export { SetupError };

/** Names the usage error in the options, if any. */
export function checkOptions(o: ConformanceOptions): string | undefined {
  if (!isName(o.driver)) return `--driver ${JSON.stringify(o.driver)}: a driver name is ${NAME_RULE}`;
  if (!o.command.length) return 'no driver command: put it after "--", e.g. conveyor conformance --driver my-driver -- node my-driver.js';
  if (!(o.timeoutMs > 0)) return '--timeout must be a positive number of seconds';
  const unknown = (o.only ?? []).filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) return `unknown scenario(s) ${unknown.join(', ')}: one of ${SCENARIOS.map((s) => s.name).join(', ')}`;
  return undefined;
}

/**
 * Puts a driver through the step protocol's scenarios, as a black box: a nats-server and a
 * gateway of its own, the driver started from its command with CONVEYOR_CONFORMANCE=1, and real
 * pipelines through the gateway's API whose steps carry conformance instructions. The scenarios
 * run side by side, then the one that kills the driver runs alone. Throws SetupError when it
 * cannot run at all.
 */
export async function runConformance(o: ConformanceOptions): Promise<ScenarioResult[]> {
  const say = o.say ?? (() => undefined);
  const cleanups: Array<() => Promise<unknown>> = [];
  // A SIGTERM ends the process through exit, whose hook stops what the kit started.
  const onTerm = () => process.exit(143);
  process.once('SIGTERM', onTerm);
  cleanups.push(async () => process.off('SIGTERM', onTerm));
  try {
    const nats = await startNats();
    cleanups.unshift(nats.close);
    say(`nats-server on ${nats.url}`);
    const gateway = await startGateway(nats.url);
    cleanups.unshift(gateway.close);
    say(`gateway on ${gateway.url}`);
    const nc = await connect({ servers: nats.url, name: 'conveyor-conformance' });
    cleanups.unshift(() => nc.close());
    const subjects = new Subjects();
    const wire = new WireWatch(nc, subjects, o.driver);
    let driver: Child | undefined;
    let restarting = false;
    const driverGone = () => (driver && !restarting && !driver.running ? `the driver exited (${driver.proc.exitCode ?? driver.proc.signalCode})` : undefined);
    const probe = new Probe(gateway.url, o.driver, subjects, await jetstreamManager(nc), wire, o.timeoutMs, driverGone);
    await probe.request('POST', '/resource-definitions/apply', { name: RESOURCE_TYPE, description: 'resources of conformance scenarios', version: '1.0.0', schema: { type: 'object' } });

    const env = driverEnv(nats.url, o.driver);
    driver = startDriver(o.command, env);
    cleanups.unshift(() => driver!.kill('SIGTERM'));
    const notReady = await serving(probe, driver);
    const hands: Hands = {
      js: jetstream(nc),
      nc,
      killAndRestartDriver: async () => {
        restarting = true;
        await driver!.kill('SIGKILL');
        driver = startDriver(o.command, env);
        restarting = false;
        const why = await serving(probe, driver);
        if (why) throw new Failed(`the driver did not serve again after its restart: ${why}`);
      },
    };
    const chosen = SCENARIOS.filter((s) => !o.only?.length || o.only.includes(s.name));
    const results: ScenarioResult[] = [];
    if (notReady) results.push(...chosen.map((s) => ({ name: s.name, checks: s.checks, passed: false, ms: 0, reason: notReady })));
    else {
      say(`driver "${o.driver}" is serving: ${chosen.length} scenario(s)`);
      results.push(...(await Promise.all(chosen.filter((s) => !s.alone).map((s) => attempt(s, probe, hands, say)))));
      for (const s of chosen.filter((x) => x.alone)) results.push(await attempt(s, probe, hands, say));
    }
    if (results.some((r) => !r.passed)) say(`driver output (last lines):\n${driver!.tail(20) || '(none)'}`);
    return chosen.map((s) => results.find((r) => r.name === s.name)!);
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}

async function attempt(s: Scenario, probe: Probe, hands: Hands, say: (line: string) => void): Promise<ScenarioResult> {
  const started = Date.now();
  try {
    await s.run(probe, hands);
    say(`pass  ${s.name}`);
    return { name: s.name, checks: s.checks, passed: true, ms: Date.now() - started };
  } catch (err) {
    const reason = err instanceof Failed ? err.message : `the scenario could not be carried out: ${(err as Error).message}`;
    say(`FAIL  ${s.name}: ${reason}`);
    return { name: s.name, checks: s.checks, passed: false, ms: Date.now() - started, reason };
  }
}

/**
 * Waits until the driver pulls from its durable consumer (a pull request waiting on it: what
 * any driver that serves does); undefined when it does, else why not (it exited, or never
 * pulled in time).
 */
async function serving(probe: Probe, driver: Child): Promise<string | undefined> {
  const up = await poll(async () => {
    if (!driver.running) return false;
    const info = await probe.jsm.consumers.info(probe.subjects.runsStream, probe.subjects.consumer(probe.driver)).catch(() => undefined);
    return info && info.num_waiting > 0 ? true : undefined;
  }, Math.max(probe.timeoutMs, 20_000));
  if (up) return undefined;
  const { code, signal } = await (driver.running ? Promise.resolve({ code: null, signal: null }) : driver.exited);
  const exit = driver.running ? 'it never pulled from its consumer' : code === null && signal === null ? 'it could not be started' : `it exited (${code ?? signal})`;
  return `the driver did not start serving "${probe.driver}": ${exit}`;
}

/** The results as a table, and a last line with the count. */
export function formatResults(driver: string, results: ScenarioResult[]): string {
  const w = Math.max(...results.map((r) => r.name.length), 'scenario'.length);
  const rows = results.map((r) => `${r.name.padEnd(w)}  ${(r.passed ? 'pass' : 'FAIL').padEnd(6)}  ${(r.ms / 1000).toFixed(1).padStart(5)}s  ${r.passed ? r.checks : r.reason}`);
  const passed = results.filter((r) => r.passed).length;
  return [`${'scenario'.padEnd(w)}  ${'result'.padEnd(4)}  ${'time'.padStart(5)}   detail`, ...rows, '', `driver "${driver}": ${passed} of ${results.length} scenarios passed`].join('\n');
}
