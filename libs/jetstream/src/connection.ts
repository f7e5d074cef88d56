import { readFileSync } from 'node:fs';
import { credsAuthenticator, type NatsConnection, type ConnectionOptions } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Subjects } from '@conveyor/contracts';
import type { ConveyorConfig } from '@conveyor/config';
import { assertServerVersion } from './server-version';
import { connectBatched } from './batched-writes';

/** One NATS connection and the JetStream handles built on it; every app holds exactly one. */
export interface JetStreamContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
  subjects: Subjects;
  config: ConveyorConfig;
}

export function connectionOptions(config: ConveyorConfig): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: config.nats.servers,
    name: config.nats.name,
    // Keep trying for ever: a NATS restart or a cluster node going away must not kill an agent.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    timeout: 5000,
    // Capturing a stack for every request costs more than a publish itself (seen in the
    // hand-off profile); errors still say what failed.
    noAsyncTraces: true,
  };
  if (config.nats.user) {
    opts.user = config.nats.user;
    opts.pass = config.nats.pass;
  }
  if (config.nats.token) opts.token = config.nats.token;
  if (config.nats.credsFile) opts.authenticator = credsAuthenticator(readFileSync(config.nats.credsFile));
  if (config.nats.tls) opts.tls = { ...config.nats.tls };
  return opts;
}

/**
 * Connects (waiting for a first server as long as it takes) and refuses a server older than
 * NATS_SERVER_MIN_VERSION: the connection is closed and NatsServerTooOldError thrown, so an
 * app stops at start-up with the reason instead of failing its first fenced transition.
 */
export async function connectJetStream(config: ConveyorConfig): Promise<JetStreamContext> {
  const nc = await connectBatched(connectionOptions(config));
  try {
    assertServerVersion(nc.info?.version, nc.getServer());
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const js = jetstream(nc, { timeout: 10_000 });
  return { nc, js, jsm, kvm: new Kvm(js), subjects: new Subjects(config.prefix), config };
}
