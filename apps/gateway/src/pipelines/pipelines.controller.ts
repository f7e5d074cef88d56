import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { type Pipeline } from '@conveyor/contracts';
import { PipelineDto, PipelineUpdateDto } from '../common/request-bodies';
import { parseIfMatch, setEtag } from '../common/etag';
import { NamePipe } from '../common/params';
import { PipelinesService } from './pipelines.service';

@ApiTags('pipelines')
@Controller('pipelines')
export class PipelinesController {
  constructor(private readonly service: PipelinesService) {}

  @Post()
  @ApiOperation({ summary: 'Create a pipeline (409 if it exists; 400 if its resource definition does not exist)' })
  async create(@Body() dto: PipelineDto, @Res({ passthrough: true }) res: Response): Promise<Pipeline> {
    const saved = await this.service.create(dto);
    setEtag(res, saved.revision);
    return saved.value;
  }

  @Get()
  list(): Promise<Pipeline[]> {
    return this.service.list();
  }

  @Get(':name')
  async get(@Param('name', new NamePipe('pipeline name')) name: string, @Res({ passthrough: true }) res: Response): Promise<Pipeline> {
    const found = await this.service.get(name);
    setEtag(res, found.revision);
    return found.value;
  }

  @Put(':name')
  @ApiOperation({ summary: 'Replace a pipeline; honours If-Match. Runs already started keep the pipeline they started with.' })
  async update(
    @Param('name', new NamePipe('pipeline name')) name: string,
    @Body() dto: PipelineUpdateDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Pipeline> {
    const saved = await this.service.update(name, dto, parseIfMatch(ifMatch));
    setEtag(res, saved.revision);
    return saved.value;
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a pipeline (409 while a resource names it); honours If-Match' })
  async delete(@Param('name', new NamePipe('pipeline name')) name: string, @Headers('if-match') ifMatch: string | undefined): Promise<void> {
    await this.service.delete(name, parseIfMatch(ifMatch));
  }
}
