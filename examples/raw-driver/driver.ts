/**
 * A Conveyor driver written from the wire protocol alone: no Conveyor library, only
 * @nats-io/transport-node and @nats-io/jetstream. It follows conformance instructions (see
 * README.md), which is all `conveyor conformance` asks of it; a real driver would do its work
 * where `follow()` is. Straight-line pipelines only (a graph's steps end with `done` records
 * and need more; see libs/run-log).
 *
 * For each step message of its durable consumer:
 *   1. read it; a message it cannot read is recorded on <prefix>.dlq.<driver> and terminated;
 *   2. judge it from the last record of the run's log and claim the attempt with a record
 *      fenced on that log (Nats-Expected-Last-Subject-Sequence), keeping the message with
 *      in-progress acks from here to the ack;
 *   3. do the step, bounded by its timeout, aborted by a cancel;
 *   4. hand the run on with one fenced record (the next step's work, or the run's end) and only
 *      then ack. A failed attempt with retries left records `retry` and naks with a delay.
 */
import { hostname } from 'node:os';
import { connect, headers, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';

type Json = Record<string, unknown>;
interface Step { id: string; name?: string; driver: string; timeout?: number; retries?: number; always?: boolean; config?: Json }
interface Output { success: boolean; message?: string; data?: Json; agent?: string; machine?: string }
interface StepMessage {
  v: 1;
  runId: string;
  pipeline: { name: string; steps: Step[] };
  resource: { type: string; name: string; version: number };
  stepIndex: number;
  mode: 'normal' | 'cleanup';
  outcome?: { status: 'failed' | 'cancelled'; stepId?: string; message: string };
  outputs: Record<string, Output>;
  machine?: string;
  from?: Json;
  skipped?: number[];
}
type Outcome = { status: 'succeeded' | 'failed'; output: Output } | { status: 'cancelled'; message: string };

export interface RawDriverOptions {
  /** Deliberately wrong, for the conformance kit's own test: ack a step before its hand-off is stored. */
  ackBeforeHandOff?: boolean;
}

/** JetStream's error code for a publish whose expected last subject sequence does not hold. */
const WRONG_LAST_SEQUENCE = 10071;

const env = process.env;
const PREFIX = env.CONVEYOR_PREFIX || 'conveyor';
const STREAM = `${PREFIX.replace(/\./g, '_').toUpperCase()}_RUNS`;
const BUCKET = (kind: string) => `${PREFIX.replace(/\./g, '_')}-${kind}`;
const DRIVER = env.CONVEYOR_DRIVER_NAME ?? '';
const ACK_WAIT_MS = seconds(env.CONVEYOR_ACK_WAIT, 30) * 1000;
const HEARTBEAT_MS = seconds(env.CONVEYOR_HEARTBEAT_INTERVAL, 5) * 1000;
const CONCURRENCY = Math.max(1, Number(env.CONVEYOR_CONCURRENCY) || 4);
const MACHINE = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40) || 'host';
const AGENT = `${MACHINE}-${process.pid}`;

const S = {
  runLog: (run: string) => `${PREFIX}.steps.${run}.>`,
  work: (run: string, step: string, driver: string, machine?: string) => `${PREFIX}.steps.${run}.${step}.${driver}.${machine ?? 'any'}`,
  record: (run: string, step: string, kind: string) => `${PREFIX}.steps.${run}.${step}.${kind}`,
  end: (run: string) => `${PREFIX}.steps.${run}.end`,
  log: (run: string, driver: string, step: string) => `${PREFIX}.logs.${run}.${driver}.${step}`,
};

export async function runRawDriver(opts: RawDriverOptions = {}): Promise<void> {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(DRIVER)) throw new Error(`CONVEYOR_DRIVER_NAME=${DRIVER}: a driver name (lowercase letters, digits, "-")`);
  const nc = await connect({ servers: (env.NATS_URL ?? env.CONVEYOR_NATS_URL ?? 'nats://127.0.0.1:4222').split(','), name: `raw-driver(${DRIVER})` });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const d = new RawDriver(nc, js, jsm, opts);
  await d.start();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void d.stop().then(() => process.exit(0)));
}

class RawDriver {
  private running = true;
  /** Steps in hand, by run: a cancel aborts them. */
  private readonly active = new Map<string, Set<{ abort: AbortController; stepId: string; since: string }>>();
  private workers: Promise<void>[] = [];
  private beat?: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: RawDriverOptions,
  ) {}

  async start(): Promise<void> {
    await ensureConsumer(this.jsm, DRIVER, true);
    // A cancel reaches a running step through this core-NATS signal; one stored before the step started, through the cancels bucket.
    this.nc.subscribe(`${PREFIX}.control.*.cancel`, { callback: (_e, m) => this.active.get(m.subject.split('.').at(-2)!)?.forEach((a) => a.abort.abort('cancelled')) });
    await this.heartbeat();
    this.beat = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    const consumer = await this.js.consumers.get(STREAM, DRIVER);
    // One pull per free slot: a message is only taken when it can be started at once.
    for (let i = 0; i < CONCURRENCY; i++) {
      this.workers.push((async () => {
        while (this.running) {
          const m = await consumer.next({ expires: 5_000 }).catch(() => null);
          if (m && !this.running) m.nak();
          else if (m) await this.handle(m).catch((err) => console.error(`step message ${m.seq}: ${err}`));
        }
      })());
    }
    console.log(`raw driver "${DRIVER}" serving ${S.work('*', '*', DRIVER)} as agent ${AGENT}`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.race([Promise.all(this.workers), new Promise((r) => setTimeout(r, 10_000))]);
    clearInterval(this.beat);
    await this.js.publish(`$KV.${BUCKET('agents')}.${AGENT}`, '', { headers: kvDelete() }).catch(() => undefined);
    await this.nc.drain();
  }

  /** The agents bucket lists live agents (GET /drivers); the gateway fails work no live agent serves. */
  private async heartbeat(): Promise<void> {
    const running = [...this.active].flatMap(([runId, steps]) => [...steps].map(({ stepId, since }) => ({ runId, stepId, driver: DRIVER, since })));
    const info = { id: AGENT, drivers: [DRIVER], machine: MACHINE, host: hostname(), pid: process.pid, concurrency: CONCURRENCY, running, startedAt: STARTED, lastHeartbeat: new Date().toISOString() };
    await this.js.publish(`$KV.${BUCKET('agents')}.${AGENT}`, JSON.stringify(info)).catch((err) => console.error(`heartbeat: ${err}`));
  }

  private async handle(m: JsMsg): Promise<void> {
    const read = readStepMessage(m);
    if (typeof read === 'string') return this.deadLetter(m, read);
    const msg = read;
    const step = msg.pipeline.steps[msg.stepIndex];
    const keep = setInterval(() => m.working(), Math.max(250, ACK_WAIT_MS / 3));
    try {
      const judged = await this.judge(msg, m.seq);
      if ('why' in judged) return void (await m.ackAck().catch(() => undefined));
      const stop = await this.stopOrder(msg.runId);
      if (stop && msg.mode === 'normal' && !step.always) {
        // Never started: the step is skipped, and the run goes on to its cleanup.
        return this.handOff(m, msg, { status: 'cancelled', message: stop }, { attempt: 0, status: 'skipped' }, judged.expect);
      }
      const claim = await this.append(S.record(msg.runId, step.id, 'claim'), this.record('claim', msg, judged.attempt), `${msg.runId}.${msg.stepIndex}.claim.${judged.attempt}.${AGENT}.${m.info.deliveryCount}`, judged.expect, stepHeaders(msg));
      if (claim === undefined) return m.nak(1_000); // someone else moved the run on: judged again
      const started = Date.now();
      const outcome = await this.run(msg, step, judged.attempt);
      const durationMs = Date.now() - started;
      const maxAttempts = (step.retries ?? 0) + 1;
      if (outcome.status === 'failed' && judged.attempt < maxAttempts) {
        const retryInMs = Math.min(1000 * 2 ** (judged.attempt - 1), 300_000);
        const r = await this.append(S.record(msg.runId, step.id, 'retry'), { ...this.record('retry', msg, judged.attempt), message: outcome.output.message, retryInMs, durationMs }, `${msg.runId}.${msg.stepIndex}.retry.${judged.attempt}.${AGENT}.${m.info.deliveryCount}`, claim, stepHeaders(msg));
        if (r !== undefined) m.nak(retryInMs);
        return;
      }
      const out = outcome.status === 'cancelled' ? { message: outcome.message } : strip({ message: outcome.output.message, data: outcome.output.data });
      await this.handOff(m, msg, outcome, { attempt: judged.attempt, status: outcome.status, ...out, agent: AGENT, machine: MACHINE, durationMs }, claim);
    } finally {
      clearInterval(keep);
    }
  }

  /** What the delivery asks for, from the last record of the run's log (see libs/runs judgeDelivery). */
  private async judge(msg: StepMessage, workSeq: number): Promise<{ attempt: number; expect: number } | { why: string }> {
    const head = await this.jsm.streams.getMessage(STREAM, { last_by_subj: S.runLog(msg.runId) }).catch(() => null);
    if (!head || head.seq < workSeq) return { why: 'not this run\'s current work' };
    if (head.seq === workSeq) return { attempt: 1, expect: head.seq };
    const [stepId, kind] = head.subject.split('.').slice(-2);
    if (stepId !== msg.pipeline.steps[msg.stepIndex].id) return { why: 'the run moved on' };
    const n = (JSON.parse(new TextDecoder().decode(head.data)) as { attempt?: number }).attempt ?? 1;
    // A claim still at the end: its agent stopped before handing on (this is a redelivery).
    if (kind === 'claim' || kind === 'retry') return { attempt: n + 1, expect: head.seq };
    if (kind === 'release') return { attempt: n, expect: head.seq };
    return { why: 'the step has ended' };
  }

  /** A stop order in the cancels bucket (a user's cancel, or the gateway giving up on the run). */
  private async stopOrder(runId: string): Promise<string | undefined> {
    const e = await this.jsm.streams.getMessage(`KV_${BUCKET('cancels')}`, { last_by_subj: `$KV.${BUCKET('cancels')}.${runId}` }).catch(() => null);
    if (!e || e.header?.get('KV-Operation')) return undefined;
    try {
      const o = JSON.parse(new TextDecoder().decode(e.data)) as { message?: string };
      return typeof o.message === 'string' ? o.message : 'the run was cancelled';
    } catch {
      return 'the run was cancelled';
    }
  }

  /** One attempt of the step: the instruction, bounded by the step's timeout, with its log lines. */
  private async run(msg: StepMessage, step: Step, attempt: number): Promise<Outcome> {
    const abort = new AbortController();
    const mine = { abort, stepId: step.id, since: new Date().toISOString() };
    const runs = this.active.get(msg.runId) ?? new Set();
    this.active.set(msg.runId, runs.add(mine));
    const timeoutS = step.timeout ?? 3600;
    const timer = setTimeout(() => abort.abort('timeout'), timeoutS * 1000);
    const log = new StepLog(this.js, msg, step, attempt);
    log.line('system', `${step.name || step.id}: attempt ${attempt} on agent ${AGENT} (raw driver)`);
    try {
      const output = await follow(msg, step, log, abort.signal);
      return output.success ? { status: 'succeeded', output } : { status: 'failed', output };
    } catch (err) {
      if (abort.signal.reason === 'cancelled') return { status: 'cancelled', message: 'the run was cancelled' };
      const message = abort.signal.reason === 'timeout' ? `timed out after ${timeoutS}s` : err instanceof Error ? err.message : String(err);
      log.line('system', `error: ${message}`);
      return { status: 'failed', output: { success: false, message, agent: AGENT, machine: MACHINE } };
    } finally {
      clearTimeout(timer);
      runs.delete(mine);
      if (!runs.size) this.active.delete(msg.runId);
      await log.flush();
    }
  }

  /** The one record that ends the step and says what follows (libs/runs planHandOff, for a straight line), then the ack. */
  private async handOff(m: JsMsg, msg: StepMessage, outcome: Outcome, ended: Json, expect: number): Promise<void> {
    const steps = msg.pipeline.steps;
    const i = msg.stepIndex;
    const step = steps[i];
    const from = { stepIndex: i, stepId: step.id, driver: step.driver, ...ended, ...(msg.machine ? { pin: msg.machine } : {}), at: new Date().toISOString() };
    const outputs = { ...msg.outputs };
    if (outcome.status !== 'cancelled') outputs[step.id] = outcome.output;
    const { from: _from, skipped: _skipped, ...base } = msg;
    let next: StepMessage | undefined;
    let end: Json | undefined;
    if (msg.mode === 'normal' && outcome.status === 'succeeded') {
      if (i + 1 < steps.length) next = { ...base, outputs, stepIndex: i + 1, from };
      else end = { status: 'succeeded', from };
    } else {
      const runOutcome = msg.mode === 'cleanup' ? msg.outcome!
        : outcome.status === 'cancelled' ? { status: 'cancelled' as const, stepId: step.id, message: outcome.message }
        : { status: 'failed' as const, stepId: step.id, message: `step "${step.name || step.id}" failed${outcome.output.message ? `: ${outcome.output.message}` : ''}` };
      const skipped = msg.mode === 'normal' ? steps.map((s, j) => (j > i && !s.always ? j : -1)).filter((j) => j >= 0) : [];
      const more = skipped.length ? { skipped } : {};
      const cleanup = steps.findIndex((s, j) => j > i && s.always);
      if (cleanup >= 0) next = { ...base, outputs, stepIndex: cleanup, mode: 'cleanup', outcome: runOutcome, from, ...more };
      else end = { status: runOutcome.status, message: runOutcome.message, from, ...more };
    }
    if (this.opts.ackBeforeHandOff) await m.ackAck().catch(() => undefined);
    let stored: number | undefined;
    if (next) {
      const s = next.pipeline.steps[next.stepIndex];
      void ensureConsumer(this.jsm, s.driver, false).catch(() => undefined);
      stored = await this.append(S.work(msg.runId, s.id, s.driver, next.machine), next, `${msg.runId}.${next.stepIndex}.${next.mode}`, expect, stepHeaders(next));
    } else {
      const h = headers();
      h.set('Conveyor-Run-Id', msg.runId);
      stored = await this.append(S.end(msg.runId), { v: 1, kind: 'end', runId: msg.runId, ...end, at: from.at }, `${msg.runId}.end`, expect, h);
    }
    // Refused: another agent took the step over, or the run moved on; its later delivery only acks.
    if (stored !== undefined && !this.opts.ackBeforeHandOff) await m.ackAck().catch(() => undefined);
  }

  private record(kind: string, msg: StepMessage, attempt: number): Json {
    const step = msg.pipeline.steps[msg.stepIndex];
    return { v: 1, kind, runId: msg.runId, stepIndex: msg.stepIndex, stepId: step.id, attempt, agent: AGENT, machine: MACHINE, at: new Date().toISOString() };
  }

  /**
   * Appends a record to the run's log only if the log still ends at `expect`; returns its
   * sequence, or undefined when refused. A refusal whose log ends with this very record (same
   * message id) is an earlier try of this write that was stored.
   */
  private async append(subject: string, body: object, msgID: string, expect: number, h: MsgHdrs): Promise<number | undefined> {
    const run = subject.split('.')[PREFIX.split('.').length + 1];
    h.set('Nats-Expected-Last-Subject-Sequence', String(expect));
    h.set('Nats-Expected-Last-Subject-Sequence-Subject', S.runLog(run));
    try {
      return (await this.js.publish(subject, JSON.stringify(body), { msgID, headers: h })).seq;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== WRONG_LAST_SEQUENCE) throw err;
      const head = await this.jsm.streams.getMessage(STREAM, { last_by_subj: S.runLog(run) }).catch(() => null);
      return head?.header?.get('Nats-Msg-Id') === msgID ? head.seq : undefined;
    }
  }

  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
    const h: Record<string, string[]> = {};
    for (const k of m.headers?.keys() ?? []) h[k] = m.headers!.values(k);
    const record = { driver: DRIVER, subject: m.subject, reason, agent: AGENT, payload: Buffer.from(m.data.subarray(0, 65536)).toString('base64'), headers: h, streamSeq: m.seq, at: new Date().toISOString() };
    try {
      await this.js.publish(`${PREFIX}.dlq.${DRIVER}`, JSON.stringify(record), { msgID: `dlq.${m.info.stream}.${m.seq}` });
    } catch {
      return m.nak(5_000); // not recorded: tried again later
    }
    m.term(reason);
  }
}

/** A step message, or why it cannot be one. */
function readStepMessage(m: JsMsg): StepMessage | string {
  let v: StepMessage;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(m.data)) as StepMessage;
  } catch (err) {
    return `payload is not UTF-8 JSON: ${(err as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || v.v !== 1) return 'not a step message of version 1';
  const step = Array.isArray(v.pipeline?.steps) && Number.isInteger(v.stepIndex) ? v.pipeline.steps[v.stepIndex] : undefined;
  if (typeof v.runId !== 'string' || !step || typeof step.id !== 'string') return 'runId, pipeline.steps or stepIndex is missing or malformed';
  if (v.mode !== 'normal' && v.mode !== 'cleanup') return 'mode must be "normal" or "cleanup"';
  if (typeof v.outputs !== 'object' || v.outputs === null) return 'outputs must be an object';
  const [run, stepId, driver] = m.subject.split('.').slice(-4);
  if (run !== v.runId || stepId !== step.id || driver !== DRIVER || step.driver !== DRIVER) return `the message is for run ${v.runId} step "${step.id}" of driver "${step.driver}", not what its subject names`;
  return v;
}

/** The conformance instruction of the step (config.conformance); a real driver does its work here. */
async function follow(msg: StepMessage, step: Step, log: StepLog, signal: AbortSignal): Promise<Output> {
  const c = (step.config?.conformance ?? {}) as { action?: string; data?: Json; message?: string; ms?: number; lines?: number };
  const done = (o: Omit<Output, 'agent' | 'machine'>): Output => ({ ...strip(o), agent: AGENT, machine: MACHINE }) as Output;
  switch (c.action) {
    case 'succeed':
      return done({ success: true, message: c.message, data: c.data });
    case 'echo':
      return done({ success: true, data: { received: Object.fromEntries(Object.entries(msg.outputs).map(([id, o]) => [id, o.data ?? null])) } });
    case 'fail':
      return done({ success: false, message: c.message });
    case 'throw':
      throw new Error(c.message ?? 'thrown');
    case 'sleep':
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, c.ms ?? 0);
        const onAbort = () => (clearTimeout(t), reject(new Error(`aborted: ${signal.reason}`)));
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      });
      return done({ success: true });
    case 'log':
      for (let n = 1; n <= (c.lines ?? 0); n++) log.line('stdout', `line ${n}`);
      return done({ success: true });
    default:
      return done({ success: false, message: `no conformance instruction this driver knows (${JSON.stringify(c.action)})` });
  }
}

/** A step's log lines on <prefix>.logs.<run>.<driver>.<step>, numbered; published in order on one connection. */
class StepLog {
  private seq = 0;
  private readonly sent: Promise<unknown>[] = [];
  constructor(private readonly js: JetStreamClient, private readonly msg: StepMessage, private readonly step: Step, private readonly attempt: number) {}

  line(stream: 'stdout' | 'stderr' | 'system', line: string): void {
    const l = { runId: this.msg.runId, stepId: this.step.id, driver: DRIVER, attempt: this.attempt, seq: ++this.seq, ts: new Date().toISOString(), stream, line };
    this.sent.push(this.js.publish(S.log(this.msg.runId, DRIVER, this.step.id), JSON.stringify(l)).catch(() => undefined));
  }

  async flush(): Promise<void> {
    await Promise.all(this.sent);
  }
}

/** The durable consumer that every copy of a driver shares (as the SDK and the gateway make it). */
async function ensureConsumer(jsm: JetStreamManager, driver: string, update: boolean): Promise<void> {
  const cfg = { durable_name: driver, filter_subject: S.work('*', '*', driver), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: nanos(ACK_WAIT_MS), max_deliver: -1, max_ack_pending: 10_000 };
  try {
    await jsm.consumers.add(STREAM, cfg);
  } catch (err) {
    if (!update || !(err instanceof JetStreamApiError) || !/already (exists|in use)/i.test(err.message)) throw err;
    await jsm.consumers.update(STREAM, driver, { ack_wait: cfg.ack_wait, max_ack_pending: cfg.max_ack_pending });
  }
}

function stepHeaders(msg: StepMessage): MsgHdrs {
  const step = msg.pipeline.steps[msg.stepIndex];
  const h = headers();
  const values: Record<string, string> = {
    'Conveyor-Run-Id': msg.runId,
    'Conveyor-Pipeline': msg.pipeline.name,
    'Conveyor-Step': step.id,
    'Conveyor-Step-Index': String(msg.stepIndex),
    'Conveyor-Driver': step.driver,
    'Conveyor-Resource': `${msg.resource.type}/${msg.resource.name}@${msg.resource.version}`,
    'Conveyor-Mode': msg.mode,
  };
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}

function kvDelete(): MsgHdrs {
  const h = headers();
  h.set('KV-Operation', 'DEL');
  return h;
}

function strip<T extends Json>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function seconds(raw: string | undefined, fallback: number): number {
  const m = raw?.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m)?$/);
  if (!m) return fallback;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

const STARTED = new Date().toISOString();
