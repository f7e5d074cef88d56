import { Global, Module } from '@nestjs/common';
import { BUCKETS, type Buckets } from '@conveyor/jetstream';
import { DefinitionsStore, PipelinesStore, ResourcesStore, RunsStore } from '@conveyor/store';
import { JsonSchemaService } from './json-schema.service';

/** The state stores over the app's KV buckets, one instance each, injectable by class. */
@Global()
@Module({
  providers: [
    { provide: DefinitionsStore, useFactory: (b: Buckets) => new DefinitionsStore(b), inject: [BUCKETS] },
    { provide: PipelinesStore, useFactory: (b: Buckets) => new PipelinesStore(b), inject: [BUCKETS] },
    { provide: ResourcesStore, useFactory: (b: Buckets) => new ResourcesStore(b), inject: [BUCKETS] },
    { provide: RunsStore, useFactory: (b: Buckets) => new RunsStore(b), inject: [BUCKETS] },
    JsonSchemaService,
  ],
  exports: [DefinitionsStore, PipelinesStore, ResourcesStore, RunsStore, JsonSchemaService],
})
export class StoresModule {}
