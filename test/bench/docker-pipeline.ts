import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Run } from '@conveyor/contracts';
import { loadConfig } from '@conveyor/config';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { Api } from '../support/api';
import { BuiltinDriverFleet, tutorialPipeline } from '../support/builtin-drivers';
import { BUILD_IMAGE, ensureDockerEngine } from '../support/docker';
import { makeTestRepository } from '../support/git-repo';
import { NatsServer } from '../support/nats-server';
import { waitFor } from '../support/processes';
import { runAlone, summary } from './stats';

const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * The same build by hand: what the four drivers do, with git and the docker CLI, the container
 * made with the same image, mount, network, limits and security options the fleet's
 * container-start uses (see BuiltinDriverFleet.env).
 */
const BY_HAND = `
set -euo pipefail
repo="$1" ws="$2" name="$3"
mkdir -p "$ws"
docker run -d --name "$name" --label conveyor.test=true --network none \\
  --memory 256m --cpus 1 --pids-limit 128 --init \\
  --cap-drop ALL --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add SETGID --cap-add SETUID \\
  --security-opt no-new-privileges -v "$ws:/workspace" -w /workspace ${BUILD_IMAGE} sleep infinity >/dev/null
git clone -q --depth 1 --no-tags "file://$repo" "$ws"
docker exec -w /workspace "$name" sh -c true
docker rm -f "$name" >/dev/null
rm -rf "$ws"
`;

/**
 * `npm run bench` row: the tutorial's 4-step pipeline (container-start, git-cloner, builder
 * running `true`, container-stop) on real Docker, from POST /resources until the run is
 * `succeeded`, against a bash script doing the same by hand; runs alternate so both see the
 * same machine. BENCH_DOCKER_RUNS runs each (default 11: a median of few runs moves with the machine's load), after one warm-up each.
 */
export async function benchDockerPipeline(): Promise<string[][]> {
  const runs = Math.max(1, Number(process.env.BENCH_DOCKER_RUNS ?? 11));
  await ensureDockerEngine();
  // ensureBuildImage() finds deploy/ only from test/support, not from dist/: ask for the image instead.
  if (spawnSync('docker', ['image', 'inspect', BUILD_IMAGE], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`image ${BUILD_IMAGE} is missing: build it with deploy/image/build.sh`);
  }
  const repo = makeTestRepository();
  const scratch = mkdtempSync(join(tmpdir(), 'conveyor-bench-'));
  const nats = await NatsServer.start();
  const gateway = await createGateway(loadConfig({ CONVEYOR_NATS_URL: nats.url, CONVEYOR_HTTP_PORT: '0' }), { logger: ['error'] });
  const fleet = new BuiltinDriverFleet(nats.url);
  try {
    await gateway.listen(0, '127.0.0.1');
    const api = new Api((await gateway.getUrl()).replace('[::1]', '127.0.0.1'));
    await fleet.startAll();
    await api.ok('POST', '/resource-definitions', { name: 'bench-build', schema: { type: 'object' } });
    await api.ok('POST', '/pipelines', tutorialPipeline('bench-build', 'bench-build'));

    const conveyor: number[] = [];
    const script: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t0 = now();
      const { runid } = await api.ok<{ runid: string }>('POST', '/resources', {
        name: `bench-${i}`,
        resource: 'bench-build',
        pipeline: 'bench-build',
        spec: { repository: repo.url, commands: ['true'] },
      });
      const run = await waitFor(`bench run ${runid}`, async () => {
        const r = await api.ok<Run>('GET', `/runs/${runid}`);
        return r.status === 'succeeded' || r.status === 'failed' || r.status === 'cancelled' ? r : undefined;
      }, 120_000, 10);
      const conveyorMs = now() - t0;
      if (run.status !== 'succeeded') throw new Error(`bench run ${runid} ${run.status}: ${run.message ?? ''}`);

      const t1 = now();
      const name = `conveyor-bench-${process.pid}-${i}`;
      const byHand = spawnSync('bash', ['-c', BY_HAND, 'by-hand', repo.dir, join(scratch, `ws-${i}`), name], { encoding: 'utf8', timeout: 120_000 });
      const scriptMs = now() - t1;
      if (byHand.status !== 0) {
        spawnSync('docker', ['rm', '-f', name]);
        throw new Error(`the by-hand script failed (${byHand.status}): ${byHand.stderr}`);
      }
      if (i === 0) continue; // warm-up: page cache, image layers, first connections
      conveyor.push(conveyorMs);
      script.push(scriptMs);
    }
    const c = summary(conveyor);
    const s = summary(script);
    return [
      [`4-step docker pipeline median (ms), ${runs} runs`, c.median.toFixed(0), s.median.toFixed(0), `${(c.median / s.median).toFixed(2)}x (target <= 1.2x)`],
      ['4-step docker pipeline max (ms)', Math.max(...conveyor).toFixed(0), Math.max(...script).toFixed(0), `${(Math.max(...conveyor) / Math.max(...script)).toFixed(2)}x`],
    ];
  } finally {
    await fleet.stop();
    await gateway.close().catch(() => undefined);
    await nats.dispose();
    repo.dispose();
    rmSync(scratch, { recursive: true, force: true });
  }
}

// Alone: node dist/test/bench/docker-pipeline.js
if (require.main === module) runAlone(benchDockerPipeline, ['measure', 'conveyor', 'by hand', 'ratio / target']);
