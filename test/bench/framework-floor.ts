import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { rssBytes } from './cpu';
import { startScript } from './script-process';

/**
 * The baseline of an agent's memory: what the frameworks an agent is made of take before any
 * Conveyor code runs. A process (this file, run as a script) that starts a Nest microservice
 * with an empty module over a transport that only connects to NATS (with the JetStream and KV
 * clients an agent loads), then idles. Its RSS, read after SETTLE_MS, is the floor under every
 * agent's: node itself, Nest, rxjs and the NATS client.
 */
const SETTLE_MS = 5_000;

@Module({})
class EmptyModule {}

/** A transport that connects and does nothing else. */
class ConnectOnly extends Server implements CustomTransportStrategy {
  private nc?: NatsConnection;

  constructor(private readonly url: string) {
    super();
  }

  async listen(callback: (err?: unknown) => void): Promise<void> {
    this.nc = await connect({ servers: this.url, name: 'framework-floor' });
    jetstream(this.nc);
    new Kvm(this.nc);
    callback();
  }

  async close(): Promise<void> {
    await this.nc?.close();
  }

  on(): void {
    throw new Error('ConnectOnly has no events');
  }

  unwrap<T>(): T {
    return this.nc as T;
  }
}

/** RSS (bytes) of the floor process, connected to `natsUrl`, after it idled SETTLE_MS; bounded by 60 s. */
export async function frameworkFloorRss(natsUrl: string): Promise<number> {
  const { child } = await startScript(__filename, [natsUrl], 'framework floor');
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return rssBytes(child.pid!);
  } finally {
    child.kill('SIGKILL');
  }
}

async function floorProcess(url: string): Promise<void> {
  const app = await NestFactory.createMicroservice(EmptyModule, { strategy: new ConnectOnly(url), logger: false });
  await app.listen();
  process.stdout.write('ready\n');
}

// Run as a script: the floor process (see frameworkFloorRss, ./script-process).
if (require.main === module) {
  floorProcess(process.argv[2]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
