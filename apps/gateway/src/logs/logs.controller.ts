import { BadRequestException, Controller, Get, Headers, HttpException, Inject, NotFoundException, Param, Query, Res, type OnModuleDestroy } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { ConveyorConfig } from '@conveyor/config';
import { NAME_PATTERN, RUN_ID_PATTERN, type LogLine } from '@conveyor/contracts';
import { CONVEYOR_CONFIG } from '@conveyor/jetstream';
import { LogFanout, LogReader, type LogEntry } from '@conveyor/logs';
import { RunsStore } from '@conveyor/store';
import { NamePipe, RunIdPipe } from '../common/params';
import { SseWriter, openSse } from '../common/sse';

@ApiTags('logs')
@Controller('logs')
export class LogsController implements OnModuleDestroy {
  /** Open SSE streams, ended when the app shuts down (they would otherwise keep it alive). */
  private readonly streams = new Set<AbortController>();
  /** Open SSE streams per run: each holds a NATS consumer, so one run cannot take them all (429 above the limit). */
  private readonly perRun = new Map<string, number>();

  constructor(
    private readonly reader: LogReader,
    private readonly fanout: LogFanout,
    private readonly runs: RunsStore,
    @Inject(CONVEYOR_CONFIG) private readonly config: ConveyorConfig,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Stored log lines of a run (optionally of one driver), in order' })
  @ApiQuery({ name: 'runid', required: true })
  @ApiQuery({ name: 'driver', required: false })
  async list(@Query('runid') runId?: string, @Query('driver') driver?: string): Promise<LogLine[]> {
    if (!runId || !RUN_ID_PATTERN.test(runId)) throw new BadRequestException('query parameter "runid" must be a run id (26 lowercase letters and digits)');
    if (driver !== undefined && !NAME_PATTERN.test(driver)) throw new BadRequestException('query parameter "driver" must be a driver name');
    await this.requireRun(runId);
    const lines: LogLine[] = [];
    for await (const e of this.reader.read(runId, { driver, follow: false })) if ('line' in e) lines.push(e.line);
    return lines;
  }

  @Get('pipeline/:runid')
  @ApiOperation({ summary: 'Server-Sent Events: every log line of a run, stored then live, ending with an "end" event' })
  @ApiProduces('text/event-stream')
  async pipeline(@Param('runid', RunIdPipe) runId: string, @Headers('last-event-id') lastEventId: string | undefined, @Res() res: Response): Promise<void> {
    await this.requireRun(runId);
    await this.stream(res, runId, undefined, lastEventId);
  }

  @Get('streams/:driver/:runid')
  @ApiOperation({ summary: 'Server-Sent Events: the log lines of one driver in a run, stored then live' })
  @ApiProduces('text/event-stream')
  async driver(
    @Param('driver', new NamePipe('driver')) driver: string,
    @Param('runid', RunIdPipe) runId: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.requireRun(runId);
    await this.stream(res, runId, driver, lastEventId);
  }

  onModuleDestroy(): void {
    for (const s of this.streams) s.abort();
  }

  private async requireRun(runId: string): Promise<void> {
    if (!(await this.runs.get(runId))) throw new NotFoundException(`run "${runId}" not found`);
  }

  /**
   * One SSE stream: event id = the line's JetStream sequence, so `Last-Event-ID` resumes
   * exactly after the last line the client saw.
   */
  private async stream(res: Response, runId: string, driver: string | undefined, lastEventId?: string): Promise<void> {
    const afterSeq = lastEventId && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : 0;
    const open = this.perRun.get(runId) ?? 0;
    if (open >= this.config.http.sseMaxPerRun) {
      throw new HttpException({ message: `run ${runId} already has ${open} open log streams (CONVEYOR_SSE_MAX_PER_RUN); close one or try again later` }, 429);
    }
    this.perRun.set(runId, open + 1);
    const abort = new AbortController();
    this.streams.add(abort);
    res.on('close', () => abort.abort());
    const stopPings = openSse(res);
    const out = new SseWriter(res, abort.signal);
    try {
      // Followers of a run share one reader (see LogFanout).
      for await (const e of this.fanout.follow(runId, { driver, afterSeq, signal: abort.signal })) {
        await out.send(frame(e));
        if (abort.signal.aborted) break;
      }
    } catch (err) {
      if (!abort.signal.aborted) await out.send(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
    } finally {
      out.flush();
      stopPings();
      this.streams.delete(abort);
      const left = (this.perRun.get(runId) ?? 1) - 1;
      if (left > 0) this.perRun.set(runId, left);
      else this.perRun.delete(runId);
      res.end();
    }
  }
}

function frame(e: LogEntry): string {
  if ('end' in e) return `id: ${e.seq}\nevent: end\ndata: ${JSON.stringify(e.end)}\n\n`;
  // The line as stored is already its JSON (one line of text): not encoded again.
  return `id: ${e.seq}\nevent: log\ndata: ${e.json ?? JSON.stringify(e.line)}\n\n`;
}
