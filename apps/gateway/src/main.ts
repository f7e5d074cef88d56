import { Logger } from '@nestjs/common';
import { loadConfig } from '@conveyor/config';
import { createGateway } from './bootstrap';

async function main(): Promise<void> {
  const config = loadConfig(process.env, { name: 'conveyor-gateway' });
  const app = await createGateway(config);
  app.enableShutdownHooks();
  await app.listen(config.http.port, config.http.host);
  Logger.log(`listening on ${await app.getUrl()} (OpenAPI at /docs)`, 'Gateway');
}

main().catch((err) => {
  // Bad configuration or no NATS at start-up: say why and stop; a supervisor restarts us.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
