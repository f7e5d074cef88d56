import type { KV } from '@nats-io/kv';
import type { AgentInfo } from '@conveyor/contracts';
import { listKeys } from './kv-keys';

/**
 * The agents whose heartbeat is still in the agents bucket. Its entries expire three beats
 * after they were written, on the NATS server's own clock (the bucket's TTL): no machine's
 * clock is compared with another's, so an agent whose clock runs behind or ahead is neither
 * declared dead nor kept alive by it.
 */
export async function liveAgents(bucket: KV): Promise<AgentInfo[]> {
  return (await liveBeats(bucket)).map((b) => b.info);
}

/** The live agents with when the server stored each one's last heartbeat (its clock, in ms). */
export async function liveBeats(bucket: KV): Promise<Array<{ info: AgentInfo; storedAt: number }>> {
  const entries = await Promise.all((await listKeys(bucket)).map((key) => bucket.get(key)));
  return entries.flatMap((e) => (e !== null && e.operation === 'PUT' ? [{ info: e.json<AgentInfo>(), storedAt: e.created.getTime() }] : []));
}
