import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatBytes, type ArtifactInfo } from '@conveyor/artifacts';
import { toGatewayError, type GatewayClient } from '../client';
import { CliError } from '../errors';
import { age, parseFormat, printStructured, table } from '../output';

/** `conveyor artifacts RUNID [-o json|yaml]`: what the run's steps kept. */
export async function listArtifacts(client: GatewayClient, runId: string, output: string | undefined): Promise<void> {
  const items = await client.get<ArtifactInfo[]>(`/runs/${encodeURIComponent(runId)}/artifacts`);
  if (printStructured(parseFormat(output), items)) return;
  if (!items.length) {
    process.stderr.write(`run ${runId} kept no artifacts\n`);
    return;
  }
  process.stdout.write(table(['NAME', 'STEP', 'SIZE', 'SHA256', 'CREATED'], items.map((a) => [a.name, a.step, formatBytes(a.size), a.sha256.slice(0, 12), `${age(a.created)} ago`])));
}

/**
 * `conveyor artifacts RUNID NAME [-o FILE|-] [--force]`: streams one artifact to FILE (by
 * default its base name here), through FILE.partial renamed when whole, and checks its bytes
 * against the gateway's ETag (their sha256): a download cut short or changed on the way is
 * removed and reported, never left looking complete.
 */
export async function downloadArtifact(client: GatewayClient, runId: string, name: string, opts: { output?: string; force: boolean }, say: (line: string) => void): Promise<void> {
  const target = opts.output ?? basename(name);
  const toStdout = target === '-';
  if (!toStdout && existsSync(target) && !opts.force) throw new CliError(`${target} exists; use --force to replace it, or -o to write elsewhere`);
  const path = `/runs/${encodeURIComponent(runId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
  const res = await client.fetch(path, { headers: client.headers() });
  if (res.status !== 200 || !res.body) throw toGatewayError(res.status, await res.text(), `GET ${path}`);
  const expected = /^"?([0-9a-f]{64})"?$/.exec(res.headers.get('etag') ?? '')?.[1];
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const partial = `${target}.partial`;
  const body = Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]);
  try {
    await pipeline(body, tap, toStdout ? process.stdout : createWriteStream(partial), toStdout ? { end: false } : {});
  } catch (err) {
    if (!toStdout) rmSync(partial, { force: true });
    throw new CliError(`downloading ${name} of run ${runId} failed after ${formatBytes(bytes)}: ${(err as Error).message}`);
  }
  const got = hash.digest('hex');
  if (expected && got !== expected) {
    if (!toStdout) rmSync(partial, { force: true });
    throw new CliError(`${name} of run ${runId}: the bytes received (sha256 ${got.slice(0, 12)}, ${formatBytes(bytes)}) are not the artifact's (sha256 ${expected.slice(0, 12)}); nothing was kept`);
  }
  if (toStdout) return;
  try {
    renameSync(partial, target);
  } catch (err) {
    rmSync(partial, { force: true });
    throw new CliError(`cannot write ${target}: ${(err as Error).message}`);
  }
  // The gateway always sends the sha256 as ETag; a proxy may drop it, and then saying "checked" would be a lie.
  say(`${target}: ${formatBytes(bytes)}, sha256 ${got}${expected ? ' (checked)' : ' (not checked: no sha256 ETag in the answer)'}`);
}
