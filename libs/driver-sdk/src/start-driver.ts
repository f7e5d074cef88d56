import { Logger, type INestMicroservice, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, parseDuration, type ConveyorConfig } from '@conveyor/config';
import { nestLogger } from '@conveyor/logging';
import { AgentMetrics, metricsAddress } from '@conveyor/metrics';
import { startTracing, stopTracing } from '@conveyor/tracing';
import { JetStreamServer } from '@conveyor/transport';
import { StepErrorFilter } from './step-error.filter';
import { StepRunner } from './step-runner';

export interface StartDriverOptions {
  /** Used for the NATS connection name and the logs. */
  name: string;
  /** Default steps per agent when CONVEYOR_CONCURRENCY is not set. */
  concurrency?: number;
  env?: Record<string, string | undefined>;
}

/** A driver agent serving its steps, with the way to stop it. */
export interface LaunchedDriver {
  app: INestMicroservice;
  /** CONVEYOR_AGENT_ID, or the one made up from the host and process. */
  agentId: string;
  /**
   * Stops taking work, lets running steps finish (CONVEYOR_DRAIN_TIMEOUT, default 30s), hands
   * back the rest and closes the connection. Once: later calls get the same promise.
   */
  stop(reason?: string): Promise<void>;
}

/**
 * Runs a driver app: a Nest microservice on the JetStream transport whose `@HandleStep`
 * method gets every step of its driver. SIGTERM/SIGINT stop taking work, let running steps
 * finish (CONVEYOR_DRAIN_TIMEOUT, default 30s), hand back the rest, and exit 0.
 */
export async function startDriver(module: Type<unknown>, options: StartDriverOptions): Promise<INestMicroservice> {
  const driver = await launchDriver(module, options);
  exitOnSignals(driver, options.name);
  return driver.app;
}

/**
 * What startDriver does but the signals: the driver runs until `stop()`. For runDriver and
 * for embedding a driver in a process that owns its own shutdown.
 */
export async function launchDriver(module: Type<unknown>, options: StartDriverOptions): Promise<LaunchedDriver> {
  const env = options.env ?? process.env;
  const config: ConveyorConfig = loadConfig(env, { concurrency: options.concurrency, name: options.name });
  const drainTimeoutMs = parseDuration(env.CONVEYOR_DRAIN_TIMEOUT ?? '30s') ?? 30_000;
  const metricsAt = metricsAddress(env);
  // Only with CONVEYOR_OTEL_ENDPOINT; started before the app so its first log lines and steps are traced.
  startTracing(config.tracing);
  // Step counts and durations of this agent, on its own /metrics (CONVEYOR_METRICS_PORT),
  // recorded by the step runner itself (a Nest interceptor cost 0.1-0.2 ms per hand-off).
  const metrics = new AgentMetrics({ agent: config.agent.id, machine: config.agent.machine, name: options.name });
  const runner = new StepRunner(config, (driver) => metrics.steps.start(driver), metrics.stores);
  const app = await NestFactory.createMicroservice(module, {
    strategy: new JetStreamServer({ config, processor: runner, drainTimeoutMs }),
    logger: nestLogger(options.name, { env }),
  });
  app.useGlobalFilters(new StepErrorFilter());
  await app.listen();
  metrics.serving();
  const log = new Logger(options.name);
  if (config.conformance) log.warn('CONVEYOR_CONFORMANCE=1: steps follow their conformance instructions instead of this driver\'s handler');
  const metricsServer = await metrics.serve(metricsAt.port, metricsAt.host);
  if (metricsServer) log.log(`metrics on http://${metricsAt.host}:${metricsServer.port}/metrics, health on /health`);
  let stopped: Promise<void> | undefined;
  const stop = (reason = 'stopping') => {
    stopped ??= (async () => {
      metrics.draining();
      log.log(`${reason}: draining (up to ${drainTimeoutMs / 1000}s) and stopping`);
      // Said at once in the agents bucket (GET /drivers), not after the running steps end; not
      // awaited, so an unreachable NATS does not delay the drain (its heartbeat awaits the write
      // before it removes the entry).
      void runner.draining();
      await app.close();
      // Stops listening at once; not awaited: a scrape in progress does not hold the stop.
      void metricsServer?.close();
      // The spans still batched are sent (bounded by the exporter's own timeout).
      await stopTracing();
    })();
    return stopped;
  };
  return { app, agentId: config.agent.id, stop };
}

/** SIGTERM/SIGINT: drain and stop, then exit 0 (1 when the shutdown failed). */
export function exitOnSignals(driver: Pick<LaunchedDriver, 'stop'>, name: string): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      driver.stop(signal).then(
        () => process.exit(0),
        (err) => {
          new Logger(name).error(`shutdown failed: ${err}`);
          process.exit(1);
        },
      );
    });
  }
}
