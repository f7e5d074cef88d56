import { startDriver } from '@conveyor/driver-sdk';
import { GitClonerModule } from './git-cloner.module';

void startDriver(GitClonerModule, { name: 'git-cloner' });
