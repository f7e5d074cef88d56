import { BadRequestException, Controller, Get, Inject, Query, type OnModuleInit } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { KV } from '@nats-io/kv';
import { NAME_PATTERN, type AgentInfo } from '@conveyor/contracts';
import { JETSTREAM, openAgentsBucket, type JetStreamContext, liveAgents } from '@conveyor/jetstream';

@ApiTags('drivers')
@Controller('drivers')
export class DriversController implements OnModuleInit {
  private agents!: KV;

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  async onModuleInit(): Promise<void> {
    this.agents = await openAgentsBucket(this.ctx);
  }

  @Get()
  @ApiOperation({ summary: 'Live driver agents: drivers served, machine, running steps, last heartbeat' })
  @ApiQuery({ name: 'driver', required: false })
  @ApiQuery({ name: 'machine', required: false })
  async list(@Query('driver') driver?: string, @Query('machine') machine?: string): Promise<AgentInfo[]> {
    for (const [name, value] of [['driver', driver], ['machine', machine]] as const) {
      if (value !== undefined && !NAME_PATTERN.test(value)) throw new BadRequestException(`query parameter "${name}" is not a valid name`);
    }
    const out = (await liveAgents(this.agents)).filter(
      (a) => (!driver || a.drivers.includes(driver)) && (!machine || a.machine === machine),
    );
    return out.sort((a, b) => a.machine.localeCompare(b.machine) || a.id.localeCompare(b.id));
  }
}
