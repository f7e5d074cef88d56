import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';

const PING_TIMEOUT_MS = 2000;

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  @Get()
  @ApiOperation({ summary: '200 while NATS answers, 503 while it does not' })
  async health(@Res({ passthrough: true }) res: Response): Promise<object> {
    const { nc } = this.ctx;
    try {
      // A round trip proves the server answers, not only that a socket is open.
      let timer: NodeJS.Timeout | undefined;
      const rtt = await Promise.race([
        nc.rtt(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no answer in time')), PING_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
      return { status: 'ok', nats: 'connected', server: nc.getServer(), rttMs: rtt };
    } catch (err) {
      res.status(503);
      return {
        statusCode: 503,
        error: 'Service Unavailable',
        message: `NATS is not reachable: ${(err as Error).message}`,
        status: 'unavailable',
        nats: nc.isClosed() ? 'closed' : 'disconnected',
      };
    }
  }
}
