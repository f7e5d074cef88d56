import {
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { JetStreamContext } from './connection';
import { purgeKeyEntirely } from './kv-keys';

export interface Buckets {
  definitions: KV;
  pipelines: KV;
  resources: KV;
  runs: KV;
  /** Run ids whose cancel was requested; every agent watches it (see driver-sdk CancelWatch). */
  cancels: KV;
}

/** Agents announce themselves here; an entry lives three heartbeats unless refreshed. */
export function openAgentsBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('agents'), {
    history: 1,
    replicas: ctx.config.replicas,
    // File storage: a nats-server killed and restarted keeps the heartbeats, so an agent still
    // running a step is not taken for gone in the moment before its next beat (see mayTakeOver).
    storage: StorageType.File,
    ttl: ctx.config.agent.heartbeatMs * 3,
  });
}

/**
 * The ids of runs that have not ended, kept by the gateway's projector (a key from a run's first
 * record, removed at its end) so that its reconciler looks at those runs only, not at every run
 * kept. Kept as long as runs' logs: a run whose log is gone is failed, and its key goes with it.
 */
/** Concurrency groups: by group, the run that holds it and the runs queued behind it, in order (see the gateway's RunAdmission). */
export function openGroupsBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('groups'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File });
}

/** Schedules by name (see the gateway's schedules); every gateway watches it. */
export function openSchedulesBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('schedules'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File });
}

/** Webhook triggers by name (see the gateway's triggers). */
export function openTriggersBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('triggers'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File });
}

/**
 * Webhook deliveries (`<trigger>.<hash of the delivery id>` → the run it started), written with
 * create() so that a forge's redelivery, or two copies of one delivery at once, start one run.
 */
export function openHookDeliveriesBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('hook-deliveries'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File, ttl: ctx.config.retention.hookDeliveriesMaxAgeMs });
}

/**
 * The run each tick started (`<schedule>.<due ms>` → run id), written with create() so that a
 * tick delivered twice starts one run. Kept as long as the ticks: a tick can be redelivered
 * only while it is stored.
 */
export function openTickRunsBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('tick-runs'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File, ttl: ctx.config.retention.ticksMaxAgeMs });
}

/**
 * Schedules' ticks, one subject per schedule (`<prefix>.ticks.<schedule>`): each gateway
 * fences its tick on the last one it read, so one tick per due time is stored. Limits
 * retention (not WorkQueue) so that the last tick stays to be read and fenced on after its
 * run started. Made by the gateways only (drivers have no use for it).
 */
export async function provisionTicksStream(ctx: JetStreamContext): Promise<void> {
  const { subjects: s, config: c } = ctx;
  await ensureStream(ctx, {
    name: s.ticksStream,
    description: "Schedules' ticks: one per schedule and due time, fenced on the schedule's last tick",
    subjects: [s.allTicks],
    storage: StorageType.File,
    num_replicas: c.replicas,
    discard: DiscardPolicy.Old,
    retention: RetentionPolicy.Limits,
    max_age: nanos(c.retention.ticksMaxAgeMs),
    // Its last tick is read by subject at every due time.
    allow_direct: true,
    // A window longer than the stream's age is refused by the server.
    duplicate_window: nanos(Math.min(c.steps.dedupeWindowMs, c.retention.ticksMaxAgeMs)),
  });
}

/**
 * Reports to send (commit statuses, notifications), one subject per report
 * (`<prefix>.reports.<run>.<kind>.<which>`): each is published only while its subject is empty
 * (an expected-last-subject-sequence of 0), so a report is stored once however often the run's
 * start or end is folded, for as long as the stream keeps it. Limits retention (not WorkQueue)
 * for that reason: a sent report stays, and is what a second publish is refused against.
 * Made by the gateways only.
 */
export async function provisionReportsStream(ctx: JetStreamContext): Promise<void> {
  const { subjects: s, config: c } = ctx;
  await ensureStream(ctx, {
    name: s.reportsStream,
    description: 'Commit statuses and notifications to send, one per run and report, kept after they were sent',
    subjects: [s.allReports],
    storage: StorageType.File,
    num_replicas: c.replicas,
    discard: DiscardPolicy.Old,
    retention: RetentionPolicy.Limits,
    max_age: nanos(c.reports.maxAgeMs),
    // The end-of-run status looks up whether its run's start status was stored.
    allow_direct: true,
    duplicate_window: nanos(Math.min(c.steps.dedupeWindowMs, c.reports.maxAgeMs)),
  });
}

/**
 * The run index: one empty message per run (`<prefix>.run-index.<run>`), stored as its run
 * record is made, so that the newest runs are the stream's last messages and a page of runs is
 * read from its end (direct gets) instead of listing every key of the runs bucket. Kept twice as
 * long as run records (which expire that long after their last change, not their making);
 * entries of runs gone are skipped by readers. Made by the gateways only.
 */
export async function provisionRunIndexStream(ctx: JetStreamContext): Promise<void> {
  const { subjects: s, config: c } = ctx;
  const maxAgeMs = c.retention.runsMaxAgeMs * 2;
  await ensureStream(ctx, {
    name: s.runIndexStream,
    description: 'One entry per run, in the order run records were made: what run listings page through',
    subjects: [s.allRunIndex],
    storage: StorageType.File,
    num_replicas: c.replicas,
    discard: DiscardPolicy.Old,
    retention: RetentionPolicy.Limits,
    max_age: nanos(maxAgeMs),
    allow_direct: true,
    duplicate_window: nanos(maxAgeMs > 0 ? Math.min(c.steps.dedupeWindowMs, maxAgeMs) : c.steps.dedupeWindowMs),
  });
}

/** Runs that have not ended, by id (empty values): entered by the projector at a run's first record, listed by the reconciler. */
export function openOpenRunsBucket(ctx: JetStreamContext): Promise<KV> {
  return ensureBucket(ctx, ctx.subjects.bucket('open-runs'), {
    history: 1,
    replicas: ctx.config.replicas,
    storage: StorageType.File,
    ttl: ctx.config.retention.runLogMaxAgeMs,
  });
}

/**
 * Takes an ended run out of the open-runs index: its key's messages are purged from the bucket's
 * stream, leaving nothing. A KV delete (or purge) leaves a marker per run for the bucket's max
 * age (30 days), and listing the keys, as every reconciler check does, reads every marker:
 * 10,000 of them cost the lister 60–290 ms of CPU per check.
 */
export function leaveOpenRuns(openRuns: KV, runId: string): Promise<void> {
  return purgeKeyEntirely(openRuns, runId);
}

/**
 * Creates the streams and buckets if they are missing. Safe to run from every process at
 * start-up at the same time: whichever comes first creates, the rest find what it made.
 * An existing stream is never recreated or shrunk (that could drop stored data); its
 * limits are updated only when they differ.
 */
export async function provisionStreams(ctx: JetStreamContext): Promise<void> {
  const { subjects: s, config: c } = ctx;
  const common = { storage: StorageType.File, num_replicas: c.replicas, discard: DiscardPolicy.Old };
  await refuseOldLayout(ctx);
  await ensureStream(ctx, {
    ...common,
    name: s.runsStream,
    description: "Runs' logs: step work, claims, retries and each run's end, every record fenced on its run's last sequence; and steps' starts",
    subjects: [s.allRunRecords, s.allEvents],
    // Limits (not WorkQueue) so that `nats stream view` works, operators can read what ran,
    // and a run's log stays whole for the writers that check it.
    retention: RetentionPolicy.Limits,
    max_age: nanos(c.retention.runLogMaxAgeMs),
    // A run's first record is read by subject when its run record must be made again.
    allow_direct: true,
    duplicate_window: nanos(c.steps.dedupeWindowMs),
  });
  await ensureStream(ctx, {
    ...common,
    name: s.logsStream,
    description: 'Log lines of steps, in order per run',
    subjects: [s.allLogs],
    retention: RetentionPolicy.Limits,
    max_age: nanos(c.retention.logsMaxAgeMs),
    max_bytes: c.retention.logsMaxBytes,
    duplicate_window: nanos(c.steps.dedupeWindowMs),
  });
  await ensureStream(ctx, {
    ...common,
    name: s.deadLetterStream,
    description: 'Messages a driver could not read, with the reason',
    subjects: [s.allDeadLetters],
    retention: RetentionPolicy.Limits,
    max_age: nanos(c.retention.deadLettersMaxAgeMs),
    // The gateway reads a driver's newest letters backwards (direct gets up to a sequence),
    // never the whole stream. Turned on for a stream made before it, too (see ensureStream).
    allow_direct: true,
  });
}

/**
 * A store written by an older Conveyor holds `<P>_STEPS` and `<P>_EVENTS` (per-driver step
 * subjects, separate events), whose subjects overlap the runs stream. Their messages are of the
 * old layout, which no agent reads any more; they are not deleted here (that is the operator's
 * call), and nothing starts until they are gone.
 */
async function refuseOldLayout(ctx: JetStreamContext): Promise<void> {
  const old: string[] = [];
  for (const name of [`${ctx.subjects.streamPrefix}_STEPS`, `${ctx.subjects.streamPrefix}_EVENTS`]) {
    try {
      await ctx.jsm.streams.info(name);
      old.push(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (old.length) {
    throw new Error(
      `this NATS server holds ${old.join(' and ')} from an older Conveyor, whose step subjects overlap ${ctx.subjects.runsStream}; ` +
        `let its runs finish (or give them up), then remove them: nats stream rm ${old.join(' ')}`,
    );
  }
}

/** Stop orders by run (a user's cancel, a gateway giving up, a graph failing fast), which agents watch. */
export function openCancelsBucket(ctx: JetStreamContext): Promise<KV> {
  // A stop order matters as long as a step message of the run can still be delivered.
  return ensureBucket(ctx, ctx.subjects.bucket('cancels'), { history: 1, replicas: ctx.config.replicas, storage: StorageType.File, ttl: ctx.config.retention.runLogMaxAgeMs });
}

export async function openBuckets(ctx: JetStreamContext): Promise<Buckets> {
  const { subjects: s, config: c } = ctx;
  const open = (kind: Parameters<typeof s.bucket>[0], history: number, ttl?: number) =>
    ensureBucket(ctx, s.bucket(kind), { history, replicas: c.replicas, storage: StorageType.File, ttl });
  const [definitions, pipelines, resources, runs, cancels] = await Promise.all([
    open('definitions', 5),
    open('pipelines', 5),
    open('resources', 1),
    open('runs', 1),
    openCancelsBucket(ctx),
  ]);
  return { definitions, pipelines, resources, runs, cancels };
}

export async function ensureBucket(
  ctx: JetStreamContext,
  name: string,
  opts: { history: number; replicas: number; storage: StorageType; ttl?: number },
): Promise<KV> {
  // Kvm.create binds to an existing bucket and creates a missing one; two processes racing
  // here send the same stream config, which JetStream accepts twice.
  try {
    return await ctx.kvm.create(name, { ...opts, allow_direct: true });
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || !/already in use/i.test(err.message)) throw err;
    return ctx.kvm.create(name, { ...opts, allow_direct: true });
  }
}

async function ensureStream(ctx: JetStreamContext, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  let existing;
  try {
    existing = await ctx.jsm.streams.info(config.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!existing) {
    try {
      await ctx.jsm.streams.add(config);
      return;
    } catch (err) {
      // Another process created it between our info and add.
      if (!(err instanceof JetStreamApiError) || !/already in use/i.test(err.message)) throw err;
      existing = await ctx.jsm.streams.info(config.name);
    }
  }
  const cur = existing.config;
  const drift =
    cur.max_age !== config.max_age ||
    (config.max_bytes !== undefined && cur.max_bytes !== config.max_bytes) ||
    // The window only grows: the process that needs the longest (its ack wait) wins.
    (config.duplicate_window !== undefined && config.duplicate_window > cur.duplicate_window) ||
    cur.num_replicas !== config.num_replicas ||
    // Only ever turned on: a reader relies on it.
    (config.allow_direct === true && !cur.allow_direct);
  if (drift) {
    await ctx.jsm.streams.update(config.name, {
      max_age: config.max_age,
      max_bytes: config.max_bytes ?? cur.max_bytes,
      duplicate_window: Math.max(config.duplicate_window ?? 0, cur.duplicate_window),
      num_replicas: config.num_replicas,
      ...(config.allow_direct ? { allow_direct: true } : {}),
    });
  }
}

export function isNotFound(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === 404 || /not found/i.test(err.message);
  return err instanceof Error && /not found/i.test(err.message);
}
