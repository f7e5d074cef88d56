import { spawnSync } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Run } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from '../support/api';
import { BuiltinDriverFleet, tutorialPipeline } from '../support/builtin-drivers';
import { BUILD_IMAGE, ensureDockerEngine } from '../support/docker';
import { makeTestRepository } from '../support/git-repo';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { CLK_TCK, cpuTicks } from './cpu';
import { runAlone } from './stats';

const LINES = Number(process.env.BENCH_LOG_THROUGHPUT_LINES ?? 1_000_000);
const TIMEOUT_MS = Number(process.env.BENCH_LOG_THROUGHPUT_TIMEOUT_S ?? 900) * 1000;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * `npm run bench` row (with BENCH_DOCKER): a build printing LINES short lines (`seq 1 LINES`) on
 * real Docker through the builder driver, every line stored on the logs stream: lines/s from
 * the build step's start to its end (its record says both), and the builder agent's CPU per
 * 10,000 lines; against the same command by hand, `docker exec … > /dev/null`, in a container
 * of the same image (lines/s, and the docker CLI's CPU).
 */
export async function benchLogsThroughput(): Promise<string[][]> {
  await ensureDockerEngine();
  if (spawnSync('docker', ['image', 'inspect', BUILD_IMAGE], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`image ${BUILD_IMAGE} is missing: build it with deploy/image/build.sh`);
  }
  const repo = makeTestRepository();
  const nats = await NatsServer.start();
  const gateway = await createGateway(loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0' }), { logger: ['error'] });
  const fleet = new BuiltinDriverFleet(nats.url);
  const name = `conveyor-bench-logs-${process.pid}`;
  try {
    await gateway.listen(0, '127.0.0.1');
    const api = new Api((await gateway.getUrl()).replace('[::1]', '127.0.0.1'));
    await fleet.startAll();
    const builder = fleet.processes.find((p) => p.name.startsWith('builder'))!;
    await api.ok('POST', '/resource-definitions', { name: 'bench-logs', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', tutorialPipeline('bench-logs', 'bench-logs', { timeout: TIMEOUT_MS / 1000 }));

    const ticks0 = cpuTicks(builder.proc.pid!);
    const { runid } = await api.ok<{ runid: string }>('POST', '/resources', {
      name: 'bench-logs',
      resource: 'bench-logs',
      pipeline: 'bench-logs',
      spec: { repository: repo.url, commands: [`seq 1 ${LINES}`] },
    });
    const run = await waitFor(`the ${LINES}-line run`, async () => {
      const r = await api.ok<Run>('GET', `/runs/${runid}`);
      return r.status === 'succeeded' || r.status === 'failed' || r.status === 'cancelled' ? r : undefined;
    }, TIMEOUT_MS, 200);
    const agentSeconds = (cpuTicks(builder.proc.pid!) - ticks0) / CLK_TCK;
    const build = run.steps.find((s) => s.id === 'build');
    if (run.status !== 'succeeded' || !build?.startedAt || !build.finishedAt) throw new Error(`run ${runid} ${run.status}: ${run.message ?? ''}`);
    // Every line stored: the build's log subject holds LINES lines and the step's own few.
    const nc = await connect({ servers: nats.url });
    const { state } = await (await jetstreamManager(nc)).streams.info('CONVEYOR_LOGS', { subjects_filter: `conveyor.logs.${runid}.builder.build` });
    await nc.close();
    const stored = Object.values(state.subjects ?? {}).reduce((s, n) => s + n, 0);
    if (stored < LINES) throw new Error(`only ${stored} of ${LINES} lines stored`);
    const conveyorMs = Date.parse(build.finishedAt) - Date.parse(build.startedAt);

    // By hand: the same command in a container of the same image, its output thrown away.
    spawnSync('docker', ['run', '-d', '--name', name, '--label', 'conveyor.test=true', '--network', 'none', BUILD_IMAGE, 'sleep', 'infinity'], { stdio: 'ignore' });
    const t0 = now();
    const byHand = spawnSync('bash', ['-c', `docker exec ${name} sh -c 'seq 1 ${LINES}' > /dev/null; times`], { encoding: 'utf8', timeout: TIMEOUT_MS });
    const byHandMs = now() - t0;
    if (byHand.status !== 0) throw new Error(`docker exec failed (${byHand.status}): ${byHand.stderr}`);
    // `times`: the shell's, then its children's (the docker CLI) user and system time.
    const [, children] = byHand.stdout.trim().split('\n');
    const cliSeconds = (children.match(/(\d+)m([\d.]+)s/g) ?? []).reduce((s, t) => {
      const [, m, sec] = /(\d+)m([\d.]+)s/.exec(t)!;
      return s + Number(m) * 60 + Number(sec);
    }, 0);
    const rate = (ms: number) => (LINES / (ms / 1000)).toFixed(0);
    return [
      [`logs: a build printing ${LINES} lines, lines/s`, rate(conveyorMs), rate(byHandMs), `${(byHandMs / conveyorMs).toFixed(2)}x the rate of docker exec > /dev/null (build step start -> end, every line stored: ${stored})`],
      ['logs: CPU per 10,000 lines (ms)', ((agentSeconds * 1000 * 10_000) / LINES).toFixed(1), ((cliSeconds * 1000 * 10_000) / LINES).toFixed(1), 'the builder agent (whole run) against the docker CLI of docker exec'],
    ];
  } finally {
    spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
    await fleet.stop();
    await gateway.close().catch(() => undefined);
    await nats.dispose();
    repo.dispose();
  }
}

// Alone: node dist/test/bench/logs-throughput.js
if (require.main === module) runAlone(benchLogsThroughput, ['measure', 'conveyor', 'by hand', 'ratio / target']);
