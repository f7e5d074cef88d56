import { BadRequestException, Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { NAME_PATTERN, NAME_RULE, type Resource } from '@conveyor/contracts';
import { ResourceDto, ResourceUpdateDto } from '../common/request-bodies';
import { parseIfMatch, setEtag } from '../common/etag';
import { NamePipe, VersionPipe } from '../common/params';
import { ResourcesService, type ResourceWriteResult } from './resources.service';

const typePipe = new NamePipe('resource type');
const namePipe = new NamePipe('resource name');

@ApiTags('resources')
@Controller('resources')
export class ResourcesController {
  constructor(private readonly service: ResourcesService) {}

  @Post()
  @ApiOperation({ summary: 'Create a resource (version 1); with `pipeline`, start a run of it' })
  create(@Body() dto: ResourceDto): Promise<ResourceWriteResult> {
    return this.service.create(dto);
  }

  @Get()
  @ApiQuery({ name: 'resource', required: false, description: 'only resources of this resource definition' })
  @ApiOperation({ summary: 'The latest version of every resource' })
  list(@Query('resource') type?: string): Promise<Resource[]> {
    if (type !== undefined && (typeof type !== 'string' || !NAME_PATTERN.test(type))) {
      throw new BadRequestException(`resource must be ${NAME_RULE}`);
    }
    return this.service.list(type);
  }

  @Get(':type/:name')
  @ApiOperation({ summary: 'The latest version of a resource; its ETag is the version' })
  async get(@Param('type', typePipe) type: string, @Param('name', namePipe) name: string, @Res({ passthrough: true }) res: Response): Promise<Resource> {
    const found = await this.service.get(type, name);
    setEtag(res, found.version);
    return found;
  }

  @Get(':type/:name/:version')
  @ApiOperation({ summary: 'One stored version of a resource' })
  async version(
    @Param('type', typePipe) type: string,
    @Param('name', namePipe) name: string,
    @Param('version', VersionPipe) version: number,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Resource> {
    const found = await this.service.version(type, name, version);
    setEtag(res, found.version);
    return found;
  }

  @Put(':type/:name')
  @ApiOperation({ summary: 'A new version of a resource, and a new run when it has a pipeline; If-Match takes the version' })
  update(
    @Param('type', typePipe) type: string,
    @Param('name', namePipe) name: string,
    @Body() dto: ResourceUpdateDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<ResourceWriteResult> {
    return this.service.update(type, name, dto, parseIfMatch(ifMatch));
  }

  @Delete(':type/:name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a resource and all its versions (its runs stay); If-Match takes the version' })
  async delete(@Param('type', typePipe) type: string, @Param('name', namePipe) name: string, @Headers('if-match') ifMatch: string | undefined): Promise<void> {
    await this.service.delete(type, name, parseIfMatch(ifMatch));
  }
}
