import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { REPORTS_CONSUMER, type ReportJob, type Run, type RunReport } from '@conveyor/contracts';
import { JETSTREAM, SharedConsumer, type JetStreamContext } from '@conveyor/jetstream';
import { afterAnswer, afterNoAnswer, notificationRequest, shownTarget, statusRequest, type ReportRequest, type Verdict } from '@conveyor/reports';
import { NotFoundError, RunsStore } from '@conveyor/store';
import { MetricsService } from '../metrics/metrics.service';
import { SecretsService } from '../secrets/secrets.service';

/** Reports one gateway tries at once. */
const IN_FLIGHT = 64;
/** How soon a report that waits (for its run's start status, for a held API, for NATS) is looked at again. */
const WAIT_MS = 1000;
/** What of a refusal's body is kept in the run's reports (a forge says why: "Bad credentials"). */
const ERROR_BODY_CHARS = 200;

/**
 * Sends the reports the outbox stored: a durable consumer of the reports stream shared by every
 * gateway, so each report is sent by one of them, and one that a gateway took and did not finish
 * comes back to another after the ack wait. A report that fails is delivered again after the
 * back-off (or when the receiver's Retry-After or rate-limit reset says), until it is delivered
 * or given up on; each try is counted in the run's `reports`, which is how the count survives
 * a gateway's restart, and where users see it. A report is acked only after its outcome was
 * recorded, so a crash in between sends it again (receivers get a delivery id to drop repeats
 * by); the run's record holds one entry per report however often it was sent.
 */
@Injectable()
export class ReportSender implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(ReportSender.name);
  private consumer?: SharedConsumer;
  private readonly inFlight = new Set<Promise<void>>();
  /** APIs whose rate limit is spent, and when it resets (per gateway: each learns it from its own answers). */
  private readonly heldUntil = new Map<string, number>();

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
    private readonly secrets: SecretsService,
    private readonly metrics: MetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.consumer = new SharedConsumer(this.ctx, {
      stream: this.ctx.subjects.reportsStream,
      config: this.consumerConfig(),
      what: 'reports consumer',
      pull: { max_messages: IN_FLIGHT },
      // Sent side by side: one slow receiver does not hold up the others.
      handle: async (m) => {
        const p = this.handle(m).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
        if (this.inFlight.size >= IN_FLIGHT) await Promise.race(this.inFlight);
      },
      log: this.log,
    });
    await this.consumer.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.consumer?.stop();
    await Promise.allSettled([...this.inFlight]);
  }

  private consumerConfig(): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: REPORTS_CONSUMER,
      description: 'gateway: sends commit statuses and notifications',
      filter_subject: this.ctx.subjects.allReports,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // A try takes at most the request's time limit; a gateway that stopped mid-try leaves the report to another after this.
      ack_wait: nanos(this.ctx.config.reports.timeoutMs + 20_000),
      max_ack_pending: 4 * IN_FLIGHT,
      max_deliver: -1,
    };
  }

  private async handle(m: JsMsg): Promise<void> {
    let job: ReportJob;
    try {
      job = m.json<ReportJob>();
      if (job?.v !== 1 || typeof job.id !== 'string' || typeof job.runId !== 'string' || (job.kind === 'status' ? !job.status : job.kind !== 'notification' || !job.notification)) throw new Error('not a report');
    } catch {
      this.log.warn(`a message on ${m.subject} is not a report; dropped`);
      m.term('not a report');
      return;
    }
    const working = setInterval(() => m.working(), 5_000);
    try {
      await this.send(m, job);
    } catch (err) {
      // NATS trouble while reading or recording: the try is not counted; delivered again shortly.
      this.log.warn(`report ${job.id}: ${(err as Error).message}; trying again`);
      m.nak(WAIT_MS);
    } finally {
      clearInterval(working);
    }
  }

  private async send(m: JsMsg, job: ReportJob): Promise<void> {
    const run = await this.runs.get(job.runId);
    const entry = run?.value.reports?.find((r) => r.id === job.id);
    if (entry && entry.outcome !== 'retrying') {
      m.ack(); // Sent (or given up on) by an earlier delivery whose ack was lost.
      return;
    }
    const order = run && (await this.orderProblem(job, run.value));
    if (order === 'wait') return m.nak(WAIT_MS);
    if (order === 'superseded') {
      await this.record(job, { outcome: 'failed', attempts: entry?.attempts ?? 0, error: "not sent: the run's final status was sent before it" });
      return m.ack();
    }
    const request = await this.request(job);
    if (typeof request === 'string') {
      await this.record(job, { outcome: 'failed', attempts: entry?.attempts ?? 0, error: request });
      this.metrics.report(job.kind, 'failed');
      return m.ack();
    }
    const api = new URL(request.url).origin;
    const held = (this.heldUntil.get(api) ?? 0) - Date.now();
    if (held > 0) return m.nak(Math.min(held, 60_000));
    // Counted from the run's record; from the deliveries when the record is gone (its retention ended).
    const attempt = (entry?.attempts ?? (run ? 0 : m.info.deliveryCount - 1)) + 1;
    const verdict = await this.post(request, attempt);
    if (verdict.kind === 'delivered' && verdict.holdApiMs) this.heldUntil.set(api, Date.now() + verdict.holdApiMs);
    if (verdict.kind === 'retry') {
      const next = new Date(Date.now() + verdict.delayMs).toISOString();
      await this.record(job, { outcome: 'retrying', attempts: attempt, error: verdict.error, next });
      this.log.warn(`${what(job)} to ${shownTarget(request.url)} failed (attempt ${attempt}: ${verdict.error}); trying again at ${next}`);
      this.metrics.report(job.kind, 'retried');
      return m.nak(verdict.delayMs);
    }
    await this.record(job, verdict.kind === 'delivered' ? { outcome: 'delivered', attempts: attempt } : { outcome: 'failed', attempts: attempt, error: verdict.error });
    if (verdict.kind === 'give-up') this.log.warn(`${what(job)} to ${shownTarget(request.url)} given up: ${verdict.error}`);
    else this.log.log(`${what(job)} delivered to ${shownTarget(request.url)} (attempt ${attempt})`);
    this.metrics.report(job.kind, verdict.kind === 'delivered' ? 'delivered' : 'failed');
    m.ack();
  }

  /**
   * A run's statuses reach the forge in order: its end waits while its start is still being
   * tried (the forge shows the last one it got), and a start that comes after the end was sent
   * (folded late) is not sent at all.
   */
  private async orderProblem(job: ReportJob, run: Run): Promise<'wait' | 'superseded' | undefined> {
    if (job.kind !== 'status') return undefined;
    const [, , which] = job.id.split('.');
    const other = run.reports?.find((r) => r.id === `${run.id}.status.${which === 'end' ? 'start' : 'end'}`);
    if (which === 'start') return other && other.outcome === 'delivered' ? 'superseded' : undefined;
    if (other) return other.outcome === 'retrying' ? 'wait' : undefined;
    // No try of the start yet: wait when it is stored (about to be sent).
    return (await this.stored(this.ctx.subjects.report(run.id, 'status', 'start'))) ? 'wait' : undefined;
  }

  private async stored(subject: string): Promise<boolean> {
    try {
      return Boolean(await this.ctx.jsm.direct.getMessage(this.ctx.subjects.reportsStream, { last_by_subj: subject }));
    } catch (err) {
      if (err instanceof JetStreamApiError && (err.status === 404 || err.code === 10037)) return false;
      throw err;
    }
  }

  /** The request, with the secret it needs read now (never stored with the report); a string says why it cannot be made. */
  private async request(job: ReportJob): Promise<ReportRequest | string> {
    try {
      if (job.kind === 'status') {
        const name = job.status!.target.token;
        const token = await this.secrets.valueOf(name);
        if (token === undefined) return `the API token secret "${name}" is not stored, or this gateway has no CONVEYOR_SECRET_KEY to read it`;
        return statusRequest(job, token);
      }
      const name = job.notification!.target.secret;
      const secret = name === undefined ? undefined : await this.secrets.valueOf(name);
      if (name !== undefined && secret === undefined) return `the signing secret "${name}" is not stored, or this gateway has no CONVEYOR_SECRET_KEY to read it`;
      return notificationRequest(job, secret);
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async post(request: ReportRequest, attempt: number): Promise<Verdict> {
    const { reports } = this.ctx.config;
    try {
      const res = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, redirect: 'manual', signal: AbortSignal.timeout(reports.timeoutMs) });
      const text = await res.text().catch(() => '');
      const verdict = afterAnswer(res.status, (n) => res.headers.get(n), attempt, reports);
      if (verdict.kind === 'delivered' || !text.trim()) return verdict;
      return { ...verdict, error: `${verdict.error} (${oneLine(text).slice(0, ERROR_BODY_CHARS)})` };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${reports.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      // Ports fetch never connects to (the Fetch standard's blocked ports: 9, 6000, …) will not change either.
      if (/^bad port$/i.test(why)) return { kind: 'give-up', error: `port ${new URL(request.url).port} is one that fetch refuses to connect to (bad port); use another` };
      return afterNoAnswer(why, attempt, reports);
    }
  }

  /** The report's entry in its run's record: one per report, replaced at each try. */
  private async record(job: ReportJob, outcome: Pick<RunReport, 'outcome' | 'attempts' | 'error' | 'next'>): Promise<void> {
    const target = job.kind === 'status' ? shownTarget(statusUrl(job)) : shownTarget(job.notification!.target.url);
    const entry: RunReport = { id: job.id, kind: job.kind, event: job.kind === 'status' ? job.status!.state : job.notification!.event, target, at: new Date().toISOString(), ...outcome };
    await this.runs
      .mutate(job.runId, (run) => {
        const rest = (run.reports ?? []).filter((r) => r.id !== job.id);
        return { ...run, reports: [...rest, entry] };
      })
      .catch((err) => {
        // The run's record is gone (its retention ended): nothing to show it in.
        if (!(err instanceof NotFoundError)) throw err;
      });
  }
}

function statusUrl(job: ReportJob): string {
  try {
    return statusRequest(job, '').url;
  } catch {
    return job.status!.target.api;
  }
}

function what(job: ReportJob): string {
  return job.kind === 'status' ? `commit status "${job.status!.state}" of run ${job.runId} (${job.status!.commit.slice(0, 12)})` : `notification "run.${job.notification!.event}" of run ${job.runId}`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
