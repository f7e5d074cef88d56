import { startDriver } from '@conveyor/driver-sdk';
import { ContainerStopModule } from './container-stop.module';

void startDriver(ContainerStopModule, { name: 'container-stop' });
