import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Pipeline, ResourceDefinition } from '@conveyor/contracts';
import { DefinitionsStore, KvMirror, PipelinesStore, type Versioned } from '@conveyor/store';

/**
 * The resource definitions and pipelines runs start from, held in memory by a watch of their
 * buckets (KvMirror): starting a run reads neither from NATS. A change made through this
 * gateway is seen by its next start; one made through another gateway copy, once the watch
 * brings it (milliseconds). The CRUD endpoints read the buckets themselves (revisions, ETags).
 */
@Injectable()
export class PipelineCatalog implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly log = new Logger(PipelineCatalog.name);
  private readonly definitions: KvMirror<ResourceDefinition>;
  private readonly pipelines: KvMirror<Pipeline>;

  constructor(definitions: DefinitionsStore, pipelines: PipelinesStore) {
    const warn = (message: string) => this.log.warn(message);
    this.definitions = new KvMirror(definitions, 'resource definitions', warn);
    this.pipelines = new KvMirror(pipelines, 'pipelines', warn);
  }

  async onApplicationBootstrap(): Promise<void> {
    await Promise.all([this.definitions.start(), this.pipelines.start()]);
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([this.definitions.stop(), this.pipelines.stop()]);
  }

  definition(name: string): Promise<Versioned<ResourceDefinition> | undefined> {
    return this.definitions.get(name);
  }

  pipeline(name: string): Promise<Versioned<Pipeline> | undefined> {
    return this.pipelines.get(name);
  }
}
