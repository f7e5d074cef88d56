import { Inject, Injectable, Logger } from '@nestjs/common';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { Headers, MESSAGE_VERSION, type Pipeline, type Resource, type Run, type RunEvent } from '@conveyor/contracts';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';
import { MsgIds, firstStepMessage, newRun, stepHeaderValues } from '@conveyor/runs';
import { RunsStore } from '@conveyor/store';

/**
 * Starts a run of a pipeline for one stored resource version: the run record first (so
 * the projector finds it when the first events arrive), then the first step on the
 * driver's durable subject, then the run's `queued` event. Message ids are deterministic,
 * so starting the same run twice publishes nothing twice.
 */
@Injectable()
export class RunStarter {
  private readonly log = new Logger(RunStarter.name);

  constructor(
    @Inject(JETSTREAM) private readonly ctx: JetStreamContext,
    private readonly runs: RunsStore,
  ) {}

  async start(runId: string, pipeline: Pipeline, resource: Resource): Promise<Run> {
    const run = newRun(runId, pipeline, resource);
    await this.runs.create(runId, run);
    const step = firstStepMessage(run, resource);
    const first = run.pipeline.steps[0];
    const h = natsHeaders();
    for (const [k, v] of Object.entries(stepHeaderValues(step))) h.set(k, v);
    const published = this.ctx.js.publish(this.ctx.subjects.step(first.driver), JSON.stringify(step), { msgID: MsgIds.step(runId, 0), headers: h });
    const queued: RunEvent = { v: MESSAGE_VERSION, runId, scope: 'run', kind: 'queued', at: run.createdAt };
    const eh = natsHeaders();
    eh.set(Headers.RunId, runId);
    eh.set(Headers.Pipeline, pipeline.name);
    // Both in flight at once; the step is sent first, so it is stored first.
    await Promise.all([
      published,
      this.ctx.js.publish(this.ctx.subjects.runEvent(runId, 'queued'), JSON.stringify(queued), {
        msgID: MsgIds.runEvent(runId, 'queued'),
        headers: eh,
      }),
    ]);
    this.log.log(`run ${runId} of pipeline "${pipeline.name}" queued for ${resource.resource}/${resource.name} version ${resource.version}`);
    return run;
  }
}
