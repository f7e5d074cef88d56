import { Global, Module } from '@nestjs/common';
import { BUCKETS, JETSTREAM, type Buckets, type JetStreamContext } from '@conveyor/jetstream';
import { DefinitionsStore, PipelinesStore, ResourcesStore, RunIndex, RunsStore } from '@conveyor/store';
import { JsonSchemaService } from './json-schema.service';
import { PipelineCatalog } from './pipeline-catalog.service';

/** The state stores over the app's KV buckets, one instance each, injectable by class; and the catalog runs start from. */
@Global()
@Module({
  providers: [
    { provide: DefinitionsStore, useFactory: (b: Buckets) => new DefinitionsStore(b), inject: [BUCKETS] },
    { provide: PipelinesStore, useFactory: (b: Buckets) => new PipelinesStore(b), inject: [BUCKETS] },
    { provide: ResourcesStore, useFactory: (b: Buckets) => new ResourcesStore(b), inject: [BUCKETS] },
    {
      provide: RunsStore,
      useFactory: async (b: Buckets, ctx: JetStreamContext) => new RunsStore(b, await RunIndex.open(ctx, b.runs)),
      inject: [BUCKETS, JETSTREAM],
    },
    JsonSchemaService,
    PipelineCatalog,
  ],
  exports: [DefinitionsStore, PipelinesStore, ResourcesStore, RunsStore, JsonSchemaService, PipelineCatalog],
})
export class StoresModule {}
