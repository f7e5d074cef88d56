import type { KV } from '@nats-io/kv';
import type { AgentInfo } from '@conveyor/contracts';
import { listKeys } from './kv-keys';

/**
 * The agents whose last heartbeat is at most three beats old. The bucket's TTL removes
 * silent agents anyway; this also hides one that is merely late.
 */
export async function liveAgents(bucket: KV, heartbeatMs: number): Promise<AgentInfo[]> {
  const staleBefore = Date.now() - heartbeatMs * 3;
  const entries = await Promise.all((await listKeys(bucket)).map((key) => bucket.get(key)));
  return entries
    .filter((e) => e !== null && e.operation === 'PUT')
    .map((e) => e!.json<AgentInfo>())
    .filter((a) => Date.parse(a.lastHeartbeat) >= staleBefore);
}
