import { Logger } from '@nestjs/common';
import { checkExposure } from '@conveyor/auth';
import { loadConfig } from '@conveyor/config';
import { nestLogger } from '@conveyor/logging';
import { createGateway } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig(process.env, { name: 'conveyor-gateway' });
  // Throws (the process stops) for an open API on a non-loopback address.
  const unauthenticated = checkExposure(config.http.host, config.auth);
  const app = await createGateway(config, { logger: nestLogger('gateway') });
  if (unauthenticated) Logger.warn(unauthenticated, 'Gateway');
  app.enableShutdownHooks();
  await app.listen(config.http.port, config.http.host);
  Logger.log(`listening on ${await app.getUrl()} (OpenAPI at /docs)`, 'Gateway');
}

main().catch((err) => {
  // Bad configuration or no NATS at start-up: say why and stop; a supervisor restarts us.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
