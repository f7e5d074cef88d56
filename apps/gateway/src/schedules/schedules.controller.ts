import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ScheduleDto, ScheduleUpdateDto } from '../common/request-bodies';
import { NamePipe } from '../common/params';
import { SchedulesService, type ScheduleView } from './schedules.service';

const namePipe = new NamePipe('schedule name');

@ApiTags('schedules')
@Controller('schedules')
export class SchedulesController {
  constructor(private readonly service: SchedulesService) {}

  @Post()
  @ApiOperation({ summary: 'Create a schedule: each tick of its cron makes a new version of the resource and starts a run' })
  create(@Body() dto: ScheduleDto): Promise<ScheduleView> {
    return this.service.create(dto);
  }

  @Get()
  @ApiOperation({ summary: 'Every schedule, with its next due time and last tick' })
  list(): Promise<ScheduleView[]> {
    return this.service.list();
  }

  @Get(':name')
  @ApiOperation({ summary: 'A schedule, with its next due time (`next`) and its last tick (`last`: time, tick id, run)' })
  get(@Param('name', namePipe) name: string): Promise<ScheduleView> {
    return this.service.get(name);
  }

  @Put(':name')
  @ApiOperation({ summary: 'Replace a schedule (a changed cron or zone is due from now on)' })
  update(@Param('name', namePipe) name: string, @Body() dto: ScheduleUpdateDto): Promise<ScheduleView> {
    return this.service.update(name, dto);
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a schedule: its ticks stop (runs it started stay)' })
  async delete(@Param('name', namePipe) name: string): Promise<void> {
    await this.service.delete(name);
  }
}
