import { BadRequestException, Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RUN_ID_PATTERN, type Run } from '@conveyor/contracts';
import { setEtag } from '../common/etag';
import { RunIdPipe, StepIdPipe } from '../common/params';
import { DecisionDto, RerunDto, RunsQueryDto } from './runs-query.dto';
import type { AuthenticatedRequest } from '../auth/auth.middleware';
import { RunFeeds } from './run-feeds.service';
import { RunsService } from './runs.service';

@ApiTags('runs')
@Controller('runs')
export class RunsController {
  constructor(
    private readonly service: RunsService,
    private readonly feeds: RunFeeds,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Runs, newest first',
    description:
      'A filtered list looks at the newest CONVEYOR_RUNS_LIST_SCAN runs at most; when it stopped there with fewer than `limit` matches, ' +
      'the `Conveyor-Runs-Partial` header gives the number of runs it looked at. A full page has a `Link` header (rel="next") ' +
      'to the runs older than its last one (`before`), with the same filters.',
  })
  async list(@Query() q: RunsQueryDto, @Res({ passthrough: true }) res: Response): Promise<Run[]> {
    const limit = q.limit ?? 50;
    const page = await this.service.list({ pipeline: q.pipeline, status: q.status, resource: q.resource, type: q.type, limit, before: q.before });
    if (page.partial) res.setHeader('Conveyor-Runs-Partial', String(page.scanned));
    // A full page may have older runs after it; a short one has not (or the scan stopped: see Partial).
    if (page.runs.length === limit) {
      const next = new URLSearchParams({ before: page.runs[page.runs.length - 1].id });
      for (const key of ['pipeline', 'status', 'resource', 'type', 'limit'] as const) if (q[key] !== undefined) next.set(key, String(q[key]));
      res.setHeader('Link', `</runs?${next}>; rel="next"`);
    }
    return page.runs;
  }

  // Declared before ':id', which would take "events" for a run id.
  @Get('events')
  @ApiOperation({
    summary: 'Server-Sent Events: run records as they change (event "run" with the run, "deleted" with its id)',
    description:
      'The event id is the runs bucket\'s revision: with `Last-Event-ID` the stream resumes after it, without a gap or a duplicate ' +
      '(a run\'s ETag is one too); without it, only changes from now on. At most CONVEYOR_SSE_MAX_RUN_FEEDS streams per gateway (429).',
  })
  @ApiProduces('text/event-stream')
  @ApiQuery({ name: 'run', required: false, description: 'only this run\'s changes' })
  @ApiHeader({ name: 'Last-Event-ID', required: false })
  async events(@Query('run') runId: string | undefined, @Headers('last-event-id') lastEventId: string | undefined, @Res() res: Response): Promise<void> {
    if (runId !== undefined && (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId))) {
      throw new BadRequestException('query parameter "run" must be a run id (26 lowercase letters and digits)');
    }
    await this.feeds.stream(res, { runId, lastEventId });
  }

  @Get(':id')
  @ApiOperation({ summary: 'A run: its status and every step\'s status, attempts, agent and timings' })
  async get(@Param('id', RunIdPipe) id: string, @Res({ passthrough: true }) res: Response): Promise<Run> {
    const found = await this.service.get(id);
    setEtag(res, found.revision);
    return found.value;
  }

  @Post(':id/rerun')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Run again: the same resource version and the pipeline as it ran (409 if it has not ended)',
    description: 'Body `{"failed": true}` runs only the steps that failed, were cancelled or skipped, what needs them, and what made the machine state they need; the others are carried over with their outputs (`reusedFrom`).',
  })
  rerun(@Param('id', RunIdPipe) id: string, @Body() body: RerunDto): Promise<{ runid: string }> {
    return this.service.rerun(id, body?.failed === true);
  }

  @Post(':id/steps/:stepId/approve')
  @HttpCode(200)
  @ApiOperation({ summary: 'Approve an approval step that waits: it succeeds and the run goes on (409 if it is not waiting)' })
  approve(@Param('id', RunIdPipe) id: string, @Param('stepId', StepIdPipe) stepId: string, @Body() body: DecisionDto, @Req() req: AuthenticatedRequest): Promise<Run> {
    return this.service.decide(id, stepId, true, callerOf(req), body?.comment);
  }

  @Post(':id/steps/:stepId/reject')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reject an approval step that waits: it fails, and the run with it (its cleanup steps run; 409 if it is not waiting)' })
  reject(@Param('id', RunIdPipe) id: string, @Param('stepId', StepIdPipe) stepId: string, @Body() body: DecisionDto, @Req() req: AuthenticatedRequest): Promise<Run> {
    return this.service.decide(id, stepId, false, callerOf(req), body?.comment);
  }

  @Post(':id/cancel')
  @HttpCode(202)
  @ApiOperation({ summary: 'Ask a run to stop: the running step is aborted and cleanup steps run (409 if it already ended)' })
  cancel(@Param('id', RunIdPipe) id: string): Promise<Run> {
    return this.service.cancel(id);
  }
}

/** Who decided, for the record: the caller's token (its role and fingerprint), or nobody known when the API has no tokens. */
function callerOf(req: AuthenticatedRequest): string {
  return req.conveyorCaller ?? `an unauthenticated caller from ${req.ip ?? 'an unknown address'} (the API has no tokens)`;
}
