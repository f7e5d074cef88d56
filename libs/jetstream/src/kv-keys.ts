import { Bucket, type KV } from '@nats-io/kv';

/**
 * The keys of a KV bucket matching `filter` (`>` for all), read from the stream's
 * per-subject counts in one (paged) request. `kv.keys()` makes an ephemeral consumer that,
 * seen on nats-server 2.9, waited up to 30 s while the bucket was being written and timed out
 * when placed on a dead cluster node. Keys whose last value is a delete or purge marker are
 * listed too: callers read the values and drop those.
 */
export async function listKeys(kv: KV, filter = '>'): Promise<string[]> {
  const bucket = bucketOf(kv);
  const prefix = `$KV.${bucket.bucket}.`;
  const info = await bucket.jsm.streams.info(bucket.stream, { subjects_filter: prefix + filter });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
}

/**
 * Removes `key` from the bucket's stream, leaving nothing: a KV delete or purge leaves a marker
 * for the bucket's max age, which every listing of its keys reads again.
 */
export async function purgeKeyEntirely(kv: KV, key: string): Promise<void> {
  const bucket = bucketOf(kv);
  await bucket.jsm.streams.purge(bucket.stream, { filter: `$KV.${bucket.bucket}.${key}` });
}

function bucketOf(kv: KV): Bucket {
  if (!(kv instanceof Bucket)) throw new Error('needs a bucket from @nats-io/kv');
  return kv;
}
