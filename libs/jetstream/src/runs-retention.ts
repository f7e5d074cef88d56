import { nanos } from '@nats-io/transport-node';
import type { JetStreamContext } from './connection';

/**
 * Gives the runs bucket its retention (CONVEYOR_RUNS_MAX_AGE): a run record is dropped that
 * long after its last change. The bucket's stream is updated in place when its `max_age`
 * differs (never deleted or recreated: what is younger than the setting stays); a bucket
 * made before this setting existed had no limit. The duplicate window may not exceed
 * `max_age`, so a very short setting shortens it too.
 *
 * The gateway applies it at start-up, after the buckets are opened (provision.ts makes
 * them; agents bind to what is there and never change it).
 */
export async function applyRunsRetention(ctx: JetStreamContext): Promise<void> {
  const stream = `KV_${ctx.subjects.bucket('runs')}`;
  const want = nanos(ctx.config.retention.runsMaxAgeMs);
  const { config: cur } = await ctx.jsm.streams.info(stream);
  if (cur.max_age === want) return;
  await ctx.jsm.streams.update(stream, {
    max_age: want,
    ...(cur.duplicate_window > want ? { duplicate_window: want } : {}),
  });
}
