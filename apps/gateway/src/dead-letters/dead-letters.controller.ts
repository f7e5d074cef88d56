import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { DeadLettersQueryDto } from './dead-letters.dto';
import { DeadLettersService, type DeadLetterView } from './dead-letters.service';

@ApiTags('dead-letters')
@Controller('dead-letters')
export class DeadLettersController {
  constructor(private readonly service: DeadLettersService) {}

  @Get()
  @ApiOperation({
    summary: 'The newest dead letters (messages a driver could not read), newest first',
    description: 'Each with its sequence, when it was stored, the driver, subject, reason and agent, the payload\'s size and its first 512 bytes as UTF-8 (`preview`).',
  })
  list(@Query() q: DeadLettersQueryDto): Promise<DeadLetterView[]> {
    return this.service.newest(q.limit ?? 50, q.driver);
  }
}
