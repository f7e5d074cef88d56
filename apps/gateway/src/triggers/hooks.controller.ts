import { Controller, Param, Post, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { HookDeliveries } from './hook-deliveries.service';

/**
 * `POST /hooks/:trigger`: open, without an API token: the forge's signature over the raw body
 * is the authentication (the body arrives as bytes: see bootstrap.ts). Answers 202 with the
 * run, 200 `{ignored}`, 401, 404, 400 or 422 with the reason.
 */
@ApiTags('triggers')
@Controller('hooks')
export class HooksController {
  constructor(private readonly deliveries: HookDeliveries) {}

  @Post(':trigger')
  @ApiOperation({ summary: "A forge's webhook delivery (GitHub, Gitea/Forgejo, GitLab, or the generic signed form); no API token: the signature authenticates it" })
  async receive(@Param('trigger') trigger: string, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const { status, body } = await this.deliveries.receive(trigger, req.headers, raw);
    res.status(status);
    return body;
  }
}
