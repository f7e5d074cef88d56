import { startDriver } from '@conveyor/driver-sdk';
import { ContainerStartModule } from './container-start.module';

void startDriver(ContainerStartModule, { name: 'container-start' });
