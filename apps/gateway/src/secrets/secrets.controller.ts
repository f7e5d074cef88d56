import { Body, Controller, Delete, Get, HttpCode, Param, Put, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { SecretValueDto } from './secrets.dto';
import { SecretsService } from './secrets.service';

@ApiTags('secrets')
@Controller('secrets')
export class SecretsController {
  constructor(private readonly service: SecretsService) {}

  @Put(':name')
  @ApiOperation({ summary: 'Store a secret (encrypted); admin only. 201 when new, 200 when replaced. The value is never returned.' })
  async put(@Param('name') name: string, @Body() dto: SecretValueDto, @Res({ passthrough: true }) res: Response): Promise<{ name: string; message: string }> {
    const { created } = await this.service.put(name, dto.value);
    res.status(created ? 201 : 200);
    return { name, message: `secret "${name}" ${created ? 'created' : 'replaced'}` };
  }

  @Get()
  @ApiOperation({ summary: 'The names of the stored secrets (never their values); admin only' })
  list(): Promise<Array<{ name: string; updatedAt?: string }>> {
    return this.service.list();
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a secret; admin only. Runs that refer to it fail at container-start.' })
  async delete(@Param('name') name: string): Promise<void> {
    await this.service.delete(name);
  }
}
