import { BadRequestException, Controller, Get, Inject, Query, type OnModuleInit } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { KV } from '@nats-io/kv';
import { NAME_PATTERN, type AgentInfo } from '@conveyor/contracts';
import { JETSTREAM, openAgentsBucket, type JetStreamContext, listKeys } from '@conveyor/jetstream';

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
    // The bucket's TTL removes silent agents; this also hides one that is merely late.
    const staleBefore = Date.now() - this.ctx.config.agent.heartbeatMs * 3;
    const out: AgentInfo[] = [];
    for (const key of await listKeys(this.agents)) {
      const e = await this.agents.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const a = e.json<AgentInfo>();
      if (Date.parse(a.lastHeartbeat) < staleBefore) continue;
      if (driver && !a.drivers.includes(driver)) continue;
      if (machine && a.machine !== machine) continue;
      out.push(a);
    }
    return out.sort((a, b) => a.machine.localeCompare(b.machine) || a.id.localeCompare(b.id));
  }
}
