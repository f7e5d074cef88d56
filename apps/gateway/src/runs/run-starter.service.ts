import { ConflictException, Inject, Injectable, Logger, PayloadTooLargeException } from '@nestjs/common';
import type { Pipeline, Resource, Run } from '@conveyor/contracts';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';
import { RunLog, UnstorableRecordError } from '@conveyor/run-log';
import { firstStepMessage, firstStepMessageOf, newRun } from '@conveyor/runs';
import { ConflictError, RunsStore, type Versioned } from '@conveyor/store';
import { CreatedRuns } from './created-runs';
import { endSpan, startSpan, traceparentOf, withSpan } from '@conveyor/tracing';

/** How long a start is tried again while NATS does not answer (a restart, a leader election) before the request fails. */
const START_PATIENCE_MS = 15_000;

/** Room a step message keeps under the server's max_payload for its headers and what steps add to it (their outputs). */
const FIRST_STEP_HEADROOM_BYTES = 8 * 1024;

/**
 * Starts a run of a pipeline for one stored resource version with one write: its first
 * step's work, the first record of the run's log (stored only while the log is empty, so the
 * same run cannot start twice). The run record follows, for read-your-writes; should the
 * gateway stop in between, the projector makes it from that first record.
 */
@Injectable()
export class RunStarter {
  private readonly log = new Logger(RunStarter.name);
  private readonly runLog: RunLog;

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
    private readonly created: CreatedRuns,
  ) {
    this.runLog = new RunLog(ctx);
  }

  /**
   * Refuses, before anything is stored, a resource whose run could never hand its first step
   * on: its step message would not fit in one NATS message (the server's max_payload).
   */
  checkFits(pipeline: Pipeline, resource: Omit<Resource, 'version' | 'createdAt'>): void {
    const max = this.ctx.nc.info?.max_payload;
    if (!max) return;
    // Object.assign, not `{ ...resource, version, createdAt }`: on Node 20 each property defined after a spread costs about a microsecond.
    const probe = firstStepMessageOf(pipeline, Object.assign({}, resource, { version: 1, createdAt: '' }));
    const bytes = Buffer.byteLength(JSON.stringify(probe));
    if (bytes + FIRST_STEP_HEADROOM_BYTES > max) {
      throw new PayloadTooLargeException(
        `this resource's runs could not be handed from step to step: a step message of pipeline "${pipeline.name}" with this spec is ${bytes} bytes, ` +
          `and the NATS server takes at most ${max} bytes per message (max_payload), less ${FIRST_STEP_HEADROOM_BYTES} kept for headers and step outputs; make the spec smaller`,
      );
    }
  }

  async start(runId: string, pipeline: Pipeline, resource: Resource, links: Pick<Run, 'rerunOf' | 'group'> = {}): Promise<Run> {
    // The run's span: a child of the request (or tick) that starts it, and the parent of every
    // step's span, through the traceparent its step messages carry (see libs/tracing).
    const span = startSpan('run', { attributes: { 'conveyor.run.id': runId, 'conveyor.pipeline': pipeline.name, 'conveyor.resource': `${resource.resource}/${resource.name}@${resource.version}` } });
    let failure: string | undefined;
    try {
      return await withSpan(span, () => this.write(runId, pipeline, resource, links, traceparentOf(span)));
    } catch (err) {
      failure = (err as Error).message;
      throw err;
    } finally {
      endSpan(span, failure);
    }
  }

  private async write(runId: string, pipeline: Pipeline, resource: Resource, links: Pick<Run, 'rerunOf' | 'group'>, traceparent: string | undefined): Promise<Run> {
    const run = { ...newRun(runId, pipeline, resource), ...links };
    const first = { ...firstStepMessage(run, resource), ...(traceparent ? { traceparent } : {}) };
    // This gateway's projector folds the run from the record written here (see CreatedRuns).
    const created = this.created.starting(runId);
    let record: Versioned<Run> | undefined;
    try {
      // The start is idempotent (fenced on an empty log, recognised by its id when its answer was
      // lost), so it is tried again rather than answered 503: a client told to send its request
      // again would start a second run if the first write had been stored after all.
      let written;
      for (let i = 0, deadline = Date.now() + START_PATIENCE_MS; ; i++) {
        try {
          written = await this.runLog.start(first, 5_000);
          break;
        } catch (err) {
          if (err instanceof UnstorableRecordError || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * 2 ** i)));
        }
      }
      if (!written.stored) throw new ConflictException(`run ${runId} has already started`);
      // What is stored is the record as JSON: the projector folds on from that, not from `run`.
      const stored = JSON.parse(JSON.stringify(run)) as Run;
      try {
        record = { value: stored, revision: await this.runs.create(runId, stored) };
      } catch (err) {
        // The projector was quicker: it made the record from the first step's work.
        if (!(err instanceof ConflictError)) throw err;
      }
    } finally {
      created(record);
    }
    this.log.log(`run ${runId} of pipeline "${pipeline.name}" queued for ${resource.resource}/${resource.name} version ${resource.version}`);
    return run;
  }
}
