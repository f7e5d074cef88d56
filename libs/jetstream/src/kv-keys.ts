import { Bucket, type KV } from '@nats-io/kv';

/**
 * The keys of a KV bucket matching `filter` (`>` for all), read from the stream's
 * per-subject counts in one (paged) request. `kv.keys()` makes an ephemeral consumer that,
 * seen on nats-server 2.9, waited up to 30 s while the bucket was being written and timed out
 * when placed on a dead cluster node. Keys whose last value is a delete or purge marker are
 * listed too: callers read the values and drop those.
 */
export async function listKeys(kv: KV, filter = '>'): Promise<string[]> {
  if (!(kv instanceof Bucket)) throw new Error('listKeys needs a bucket from @nats-io/kv');
  const prefix = `$KV.${kv.bucket}.`;
  const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: prefix + filter });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
}
