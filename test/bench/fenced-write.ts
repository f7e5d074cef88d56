import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { monotonicMs as now } from '../drivers/behaviours';

/**
 * The cost of a run-log write (libs/run-log) against a plain publish, in one process on a
 * file-storage stream: each write a ~1 KiB record on a fresh subject, the fenced one with
 * `Nats-Expected-Last-Subject-Sequence` over a wildcard (`…-Subject`) and a message id, as a
 * hand-off is written. Alternated in rounds, so both see the same machine.
 */
export async function fencedWrite(url: string, writes: number): Promise<{ plain: number[]; fenced: number[] }> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const stream = 'BENCH_FENCE';
  await jsm.streams.add({ name: stream, subjects: ['bench-fence.>'], storage: StorageType.File, duplicate_window: 120e9 });
  const body = 'x'.repeat(1000);
  const plain: number[] = [];
  const fenced: number[] = [];
  try {
    for (let i = 0; i < writes; i++) {
      let t = now();
      await js.publish(`bench-fence.plain.${i}.w`, body);
      plain.push(now() - t);
      const h = headers();
      h.set('Nats-Expected-Last-Subject-Sequence', '0');
      h.set('Nats-Expected-Last-Subject-Sequence-Subject', `bench-fence.run.${i}.>`);
      t = now();
      await js.publish(`bench-fence.run.${i}.w`, body, { headers: h, msgID: `fence-${i}` });
      fenced.push(now() - t);
    }
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
  return { plain, fenced };
}
