import { BadRequestException, Controller, Delete, Get, HttpCode, Inject, NotFoundException, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { CacheStore, type CacheEntry } from '@conveyor/caches';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';

const KEY = /^[A-Za-z0-9._+=,@-]{1,512}$/;

/** Build caches: what is kept (read), and dropping an entry (admin). */
@ApiTags('caches')
@Controller('caches')
export class CachesController {
  private opened?: Promise<CacheStore>;

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  private store(): Promise<CacheStore> {
    this.opened ??= CacheStore.open(this.ctx).catch((err) => {
      this.opened = undefined;
      throw err;
    });
    return this.opened;
  }

  @Get()
  @ApiOperation({ summary: 'Build caches, most recently used first: key, size, created, lastUsed, the run that saved it' })
  async list(): Promise<CacheEntry[]> {
    return (await this.store()).list();
  }

  @Delete(':key')
  @HttpCode(204)
  @ApiOperation({ summary: 'Drop a cache entry (the next build with its key misses and saves it again)' })
  async delete(@Param('key') key: string): Promise<void> {
    if (!KEY.test(key)) throw new BadRequestException(`cache key ${JSON.stringify(key.slice(0, 100))} is not valid: letters, digits and . _ + = , @ -, at most 512`);
    if (!(await (await this.store()).delete(key))) throw new NotFoundException(`no cache entry ${JSON.stringify(key)}`);
  }
}
