import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiConflictResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { type ResourceDefinition } from '@conveyor/contracts';
import { ResourceDefinitionDto, ResourceDefinitionUpdateDto } from '../common/request-bodies';
import { parseIfMatch, setEtag } from '../common/etag';
import { NamePipe } from '../common/params';
import { DefinitionsService } from './definitions.service';

@ApiTags('resource definitions')
@Controller('resource-definitions')
export class DefinitionsController {
  constructor(private readonly service: DefinitionsService) {}

  @Post()
  @ApiOperation({ summary: 'Create a resource definition (409 if it exists)' })
  @ApiConflictResponse({ description: 'a definition of that name exists' })
  async create(@Body() dto: ResourceDefinitionDto, @Res({ passthrough: true }) res: Response): Promise<ResourceDefinition> {
    const saved = await this.service.create(dto);
    setEtag(res, saved.revision);
    return saved.value;
  }

  @Post('apply')
  @ApiOperation({ summary: 'Create (201) or update (200) a resource definition' })
  async apply(@Body() dto: ResourceDefinitionDto, @Res({ passthrough: true }) res: Response): Promise<ResourceDefinition> {
    const saved = await this.service.apply(dto);
    res.status(saved.created ? 201 : 200);
    setEtag(res, saved.revision);
    return saved.value;
  }

  @Get()
  list(): Promise<ResourceDefinition[]> {
    return this.service.list();
  }

  @Get(':name')
  async get(@Param('name', new NamePipe('resource definition name')) name: string, @Res({ passthrough: true }) res: Response): Promise<ResourceDefinition> {
    const found = await this.service.get(name);
    setEtag(res, found.revision);
    return found.value;
  }

  @Put(':name')
  @ApiOperation({ summary: 'Replace a resource definition; honours If-Match' })
  async update(
    @Param('name', new NamePipe('resource definition name')) name: string,
    @Body() dto: ResourceDefinitionUpdateDto,
    @Headers('if-match') ifMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ResourceDefinition> {
    const saved = await this.service.update(name, dto, parseIfMatch(ifMatch));
    setEtag(res, saved.revision);
    return saved.value;
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a resource definition (409 while a pipeline or resource uses it); honours If-Match' })
  async delete(@Param('name', new NamePipe('resource definition name')) name: string, @Headers('if-match') ifMatch: string | undefined): Promise<void> {
    await this.service.delete(name, parseIfMatch(ifMatch));
  }
}
