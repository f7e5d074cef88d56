import { startDriver } from '@conveyor/driver-sdk';
import { BuilderModule } from './builder.module';

void startDriver(BuilderModule, { name: 'builder' });
