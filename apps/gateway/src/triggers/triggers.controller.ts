import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { TriggerDto, TriggerUpdateDto } from '../common/request-bodies';
import { NamePipe } from '../common/params';
import { TriggersService, type TriggerView } from './triggers.service';

const namePipe = new NamePipe('trigger name');

@ApiTags('triggers')
@Controller('triggers')
export class TriggersController {
  constructor(private readonly service: TriggersService) {}

  @Post()
  @ApiOperation({ summary: 'Create a webhook trigger: a signed forge event that matches it makes a new version of the resource and starts a run' })
  create(@Body() dto: TriggerDto): Promise<TriggerView> {
    return this.service.create(dto);
  }

  @Get()
  @ApiOperation({ summary: 'Every trigger, with its hook path and last delivery' })
  list(): Promise<TriggerView[]> {
    return this.service.list();
  }

  @Get(':name')
  @ApiOperation({ summary: 'A trigger, with the path its forge posts to (`hook`) and its last delivery (`last`)' })
  get(@Param('name', namePipe) name: string): Promise<TriggerView> {
    return this.service.get(name);
  }

  @Put(':name')
  @ApiOperation({ summary: 'Replace a trigger (its last delivery stays)' })
  update(@Param('name', namePipe) name: string, @Body() dto: TriggerUpdateDto): Promise<TriggerView> {
    return this.service.update(name, dto);
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a trigger: its hook answers 404 from now on (runs it started stay)' })
  async delete(@Param('name', namePipe) name: string): Promise<void> {
    await this.service.delete(name);
  }
}
