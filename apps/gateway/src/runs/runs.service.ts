import { Inject, Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { type CancelRequest, type CancelSignal, type Run, type RunStatus, isTerminalRunStatus, newRunId } from '@conveyor/contracts';
import { BUCKETS, JETSTREAM, type Buckets, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog } from '@conveyor/run-log';
import { isLine, pipelineOfRun, planRerun, planTransition } from '@conveyor/runs';
import { ConflictError, NotFoundError, ResourcesStore, RunsStore, type RunsPage, type Versioned } from '@conveyor/store';
import { RunStarter } from './run-starter.service';
import { RunAdmission } from './run-admission.service';

export interface RunFilter {
  pipeline?: string;
  status?: RunStatus;
  resource?: string;
  type?: string;
  limit: number;
  /** Only runs older than this run id. */
  before?: string;
}

@Injectable()
export class RunsService {
  private readonly log = new Logger(RunsService.name);
  private readonly runLog: RunLog;

  constructor(
    private readonly runs: RunsStore,
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    @Inject(BUCKETS) private readonly buckets: Buckets,
    private readonly starter: RunStarter,
    private readonly resources: ResourcesStore,
    private readonly moduleRef: ModuleRef,
  ) {
    this.runLog = new RunLog(ctx);
  }

  /**
   * The newest runs: without a filter it reads `limit` run records; with one, at most
   * CONVEYOR_RUNS_LIST_SCAN of the newest (`partial` when it stopped there).
   */
  list(f: RunFilter): Promise<RunsPage> {
    const filtered = Boolean(f.pipeline || f.status || f.resource || f.type);
    const filter = (r: Run) =>
      (!f.pipeline || r.pipeline.name === f.pipeline) &&
      (!f.status || r.status === f.status) &&
      (!f.resource || r.resource.name === f.resource) &&
      (!f.type || r.resource.type === f.type);
    return this.runs.page(f.limit, { filter: filtered ? filter : undefined, maxScan: this.ctx.config.http.runsListScan, before: f.before });
  }

  get(id: string): Promise<Versioned<Run>> {
    return this.runs.require(id);
  }

  /**
   * Marks the run as cancel-requested (drivers check the flag before they start a step) and
   * tells the agent running a step right now, over core NATS, to abort it. The run ends as
   * `cancelled` when its cleanup steps have run and the last driver publishes the event.
   */
  async cancel(id: string): Promise<Run> {
    const ended = (r: Run) => new ConflictError(`run ${id} already ended (${r.status}); there is nothing to cancel`);
    const before = await this.runs.require(id);
    if (isTerminalRunStatus(before.value.status)) throw ended(before.value);
    // A run waiting for its concurrency group never started: it ends where it waits.
    const admission = this.moduleRef.get(RunAdmission, { strict: false });
    if (await admission.isQueued(before.value)) {
      await admission.cancel(id, 'the run was cancelled while it waited for its concurrency group');
      return (await this.runs.require(id)).value;
    }
    const run = await this.runs.mutate(id, (r) => (isTerminalRunStatus(r.status) || r.cancelRequested ? undefined : { ...r, cancelRequested: true }));
    if (isTerminalRunStatus(run.status)) throw ended(run);
    // Durable first (agents watch this bucket, so a step still queued is skipped when it
    // comes up), then the signal that aborts a step already running.
    const request: CancelRequest = { at: new Date().toISOString() };
    await this.buckets.cancels.put(id, JSON.stringify(request));
    const signal: CancelSignal = { runId: id, at: request.at };
    this.ctx.nc.publish(this.ctx.subjects.cancel(id), JSON.stringify(signal));
    this.log.log(`cancel requested for run ${id}`);
    await (isLine(run.pipeline.steps) ? this.skipWaitingStep(id) : this.skipWaitingGraphSteps(id, run)).catch((err) => this.log.warn(`run ${id}: could not skip its waiting step at once (${(err as Error).message}); the agent that takes it will`));
    return run;
  }

  /**
   * A cancelled run whose current step waits unstarted (no agent free, or none of its driver at
   * all) does not wait for an agent to skip it: the gateway writes the skip itself, with the
   * same fenced record an agent would, and the run goes on to its cleanup. An agent that claims
   * the step meanwhile wins, and the stop order stops it.
   */
  /**
   * A new run of the same resource version and the pipeline as it ran (not as it is now); with
   * `failedOnly`, only what did not succeed and what needs it runs (see planRerun), the rest
   * is carried over with its outputs. The two run records link each other (`rerunOf`, `reruns`).
   */
  async rerun(id: string, failedOnly: boolean): Promise<{ runid: string }> {
    const old = (await this.runs.require(id)).value;
    if (!isTerminalRunStatus(old.status)) throw new ConflictError(`run ${id} has not ended (${old.status}); wait for it or cancel it first`);
    const steps = planRerun(old, failedOnly);
    if (!steps) throw new ConflictError(`run ${id} has no step that failed, was cancelled or skipped; re-run it whole instead`);
    const resource = await this.resources.version(old.resource.type, old.resource.name, old.resource.version);
    if (!resource) throw new NotFoundError(`version ${old.resource.version} of resource ${old.resource.type}/${old.resource.name} is no longer stored; it cannot be re-run`);
    const pipeline = pipelineOfRun(old, steps);
    const runid = newRunId();
    this.starter.checkFits(pipeline, resource);
    await this.moduleRef.get(RunAdmission, { strict: false }).start(runid, pipeline, resource, { rerunOf: id });
    // The gateway's projector may have made the record first, from the run's first record.
    await this.runs.mutate(runid, (r) => (r.rerunOf ? undefined : { ...r, rerunOf: id }));
    await this.runs.mutate(id, (r) => ({ ...r, reruns: [...(r.reruns ?? []), runid] }));
    this.log.log(`run ${runid} re-runs run ${id}${failedOnly ? ` (failed steps only: ${steps.filter((s) => !s.reused).map((s) => s.id).join(', ')})` : ''}`);
    return { runid };
  }

  /**
   * A person's decision on an approval step that waits: approved, it succeeds; rejected, it fails
   * (and the run with it, its cleanup steps running). Written as the step's end, fenced on the
   * step's own records, so of two decisions (or a decision and the timeout) exactly one counts;
   * the other is a 409. Who decided (the token's role and fingerprint) and when are recorded.
   */
  async decide(id: string, stepId: string, approve: boolean, who: string, comment?: string): Promise<Run> {
    const run = (await this.runs.require(id)).value;
    const index = run.pipeline.steps.findIndex((s) => s.id === stepId);
    if (index < 0) throw new NotFoundError(`run ${id} has no step "${stepId}"`);
    if (!run.pipeline.steps[index].approval) throw new ConflictError(`step "${stepId}" of run ${id} is not an approval step`);
    const g = await this.runLog.graph(id, run.pipeline.steps);
    const v = g.steps[index];
    if (g.ended || v.state !== 'ready') {
      throw new ConflictError(`step "${stepId}" of run ${id} is not waiting for a decision (${v.done ? `it ended ${v.state}${v.done.from.message ? `: ${v.done.from.message}` : ''}` : g.ended ? 'the run has ended' : 'it is not ready yet'})`);
    }
    const at = new Date().toISOString();
    const said = `${approve ? 'approved' : 'rejected'} by ${who} at ${at}${comment ? `: ${comment}` : ''}`;
    const outcome = approve ? { status: 'succeeded' as const, output: { success: true, message: said, data: { approvedBy: who, at } } } : { status: 'failed' as const, output: { success: false, message: said } };
    const r = await this.runLog.endWaiting(id, stepId, v.headSeq, outcome, { attempt: 1, agent: 'gateway', at });
    if (!r?.stored) throw new ConflictError(`step "${stepId}" of run ${id} was decided meanwhile`);
    this.log.log(`run ${id}: step ${stepId} ${said}`);
    return (await this.runs.require(id)).value;
  }

  /**
   * The same for a graph: the first of its normal steps whose work waits unstarted is skipped
   * with the run's cancel, and settling the run after it skips every other waiting step and
   * readies the cleanup steps (see planGraphFollowUp). Steps running meanwhile are stopped by the
   * stop order.
   */
  private async skipWaitingGraphSteps(id: string, run: Run): Promise<void> {
    const g = await this.runLog.graph(id, run.pipeline.steps);
    for (const [i, v] of g.steps.entries()) {
      const step = run.pipeline.steps[i];
      if (v.state !== 'ready' || step.always) continue;
      if (await this.runLog.lastStarted(id, step.id)) continue;
      // Work readied after a failure is cleanup (mode cleanup): it still runs.
      const r = await this.runLog.endWaiting(id, step.id, v.headSeq, { status: 'cancelled', message: 'the run was cancelled' }, { attempt: 0, at: new Date().toISOString(), as: 'skipped' }, (msg) => msg.mode === 'normal');
      if (r?.stored) return;
    }
  }

  private async skipWaitingStep(id: string): Promise<void> {
    const head = await this.runLog.head(id);
    if (head?.at.kind !== 'work') return;
    const found = await this.runLog.lastRecord(this.ctx.subjects.work(id, head.at.stepId, head.at.driver, head.at.machine));
    if (found?.seq !== head.seq || found.record.kind !== 'work') return;
    const msg = found.record.msg;
    if (msg.mode !== 'normal' || msg.pipeline.steps[msg.stepIndex].always) return;
    // Started without a claim (a fresh delivery): its agent has the stop order and the cancel
    // signal, and hands the step on itself.
    if (await this.runLog.lastStarted(id, head.at.stepId)) return;
    const t = planTransition(msg, { status: 'cancelled', message: 'the run was cancelled' }, { attempt: 0, at: new Date().toISOString(), as: 'skipped' });
    if ((await this.runLog.writeTransition(t, head.seq)).stored) await this.runLog.withdraw(head.seq);
  }
}
