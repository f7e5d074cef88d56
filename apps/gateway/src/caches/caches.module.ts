import { Module } from '@nestjs/common';
import { CachesController } from './caches.controller';

@Module({ controllers: [CachesController] })
export class CachesModule {}
