import { Inject, Injectable } from '@nestjs/common';
import { ArtifactStore } from '@conveyor/artifacts';
import { JETSTREAM, type JetStreamContext } from '@conveyor/jetstream';

/** The artifacts bucket, opened (made when missing) at the first request that needs it. */
@Injectable()
export class ArtifactsService {
  private opened?: Promise<ArtifactStore>;

  constructor(@Inject(JETSTREAM) private readonly ctx: JetStreamContext) {}

  store(): Promise<ArtifactStore> {
    this.opened ??= ArtifactStore.open(this.ctx).catch((err) => {
      this.opened = undefined;
      throw err;
    });
    return this.opened;
  }
}
