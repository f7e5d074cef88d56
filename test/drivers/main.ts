import { Controller, Module } from '@nestjs/common';
import { HandleStep, startDriver, type StepContext } from '@conveyor/driver-sdk';
import { behave } from './behaviours';

/**
 * A driver process for tests: serves every driver named in TEST_DRIVERS (comma-separated)
 * with the configurable behaviours of ./behaviours.ts. Built with the SDK exactly as a real
 * driver is, and run as a real process so tests can kill it. Those also named in
 * TEST_PINNING_DRIVERS pin their runs to this agent's machine (as container-start does).
 */
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const names = list(process.env.TEST_DRIVERS ?? 'noop');
const pinning = new Set(list(process.env.TEST_PINNING_DRIVERS ?? ''));

@Controller()
class TestDrivers {}

for (const name of names) {
  const method = (ctx: StepContext) => behave(ctx);
  Object.defineProperty(TestDrivers.prototype, name, { value: method, writable: true, configurable: true });
  HandleStep(name, { pinsMachine: pinning.has(name) })(TestDrivers.prototype, name, Object.getOwnPropertyDescriptor(TestDrivers.prototype, name)!);
}

@Module({ controllers: [TestDrivers] })
class TestDriversModule {}

void startDriver(TestDriversModule, { name: `test-driver(${names.join(',')})` }).catch((err) => {
  console.error(err);
  process.exit(1);
});
