import { BadRequestException, Controller, Get, Headers, NotFoundException, Param, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { ArtifactInfo } from '@conveyor/artifacts';
import { RunsStore } from '@conveyor/store';
import { RunIdPipe } from '../common/params';
import { ArtifactsService } from './artifacts.service';

/** Runs' artifacts: listed, and streamed from the Object Store chunk by chunk (never a whole file in memory). */
@ApiTags('runs')
@Controller('runs')
export class ArtifactsController {
  constructor(
    private readonly artifacts: ArtifactsService,
    private readonly runs: RunsStore,
  ) {}

  @Get(':id/artifacts')
  @ApiOperation({ summary: "A run's artifacts: name, step, size, sha256, content type, created" })
  async list(@Param('id', new RunIdPipe()) id: string): Promise<ArtifactInfo[]> {
    await this.requireRun(id);
    return (await this.artifacts.store()).list(id);
  }

  @Get(':id/artifacts/*name')
  @ApiOperation({ summary: 'An artifact\'s bytes (Content-Length, ETag = "sha256", Range requests: 206, 416)' })
  async download(
    @Param('id', new RunIdPipe()) id: string,
    @Param('name') segments: string[] | string,
    @Headers('range') range: string | undefined,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const name = (Array.isArray(segments) ? segments : [segments]).join('/');
    if (!name || name.split('/').some((p) => p === '..' || p === '.' || p === '') || /[\u0000-\u001f]/.test(name)) throw new BadRequestException(`artifact name ${JSON.stringify(name)} is not valid`);
    const store = await this.artifacts.store();
    const info = await store.info(id, name);
    if (!info) {
      await this.requireRun(id);
      throw new NotFoundException(`run ${id} has no artifact ${JSON.stringify(name)}`);
    }
    const etag = `"${info.sha256}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Content-Type', info.contentType);
    res.setHeader('Content-Disposition', `attachment; filename="${(name.split('/').pop() ?? 'artifact').replace(/["\\]/g, '_')}"`);
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      res.status(304).end();
      return;
    }
    const wanted = range ? parseRange(range, info.size) : undefined;
    if (wanted === 'unsatisfiable') {
      res.status(416).setHeader('Content-Range', `bytes */${info.size}`).json({ statusCode: 416, error: 'Range Not Satisfiable', message: `range ${range} is outside the artifact's ${info.size} bytes` });
      return;
    }
    const found = await store.read(id, name, wanted ?? undefined);
    if (!found) throw new NotFoundException(`run ${id} has no artifact ${JSON.stringify(name)}`);
    if (wanted) {
      res.status(206).setHeader('Content-Range', `bytes ${wanted.start}-${wanted.end}/${info.size}`);
      res.setHeader('Content-Length', String(wanted.end - wanted.start + 1));
    } else {
      res.status(200).setHeader('Content-Length', String(info.size));
    }
    await pipeline(found.stream, res).catch(() => {
      // The client went away: the object store read stops with the stream.
    });
  }

  private async requireRun(id: string): Promise<void> {
    if (!(await this.runs.get(id))) throw new NotFoundException(`run ${id} not found`);
  }
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; undefined (the whole file) for a form not handled, as RFC 9110 allows. */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(size - n, 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}
