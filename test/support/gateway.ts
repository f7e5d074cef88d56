import type { INestApplication } from '@nestjs/common';
import { loadConfig, type ConveyorConfig } from '@conveyor/config';
import { createGateway } from '../../apps/gateway/src/bootstrap';
import { waitFor } from './processes';

export interface RunningGateway {
  app: INestApplication;
  config: ConveyorConfig;
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

/** The real gateway app, on a free port on 127.0.0.1, talking to the given nats-server. */
export async function startGateway(natsUrl: string, env: Record<string, string> = {}): Promise<RunningGateway> {
  const config = loadConfig({ CONVEYOR_NATS_URL: natsUrl, CONVEYOR_HTTP_PORT: '0', ...env }, { name: 'conveyor-gateway-test' });
  const app = await createGateway(config, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, config, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** Polls `probe` until it returns a value, at most `timeoutMs` (processes.ts `waitFor`, probe first). */
export function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  return waitFor(what, probe, timeoutMs, everyMs);
}

/** The Conveyor CI tutorial's requests, verbatim in shape. */
export const tutorial = {
  definition: {
    name: 'flutter-builder',
    description: 'Flutter apps built from a git repository',
    version: '0.0.1',
    schema: {
      type: 'object',
      properties: {
        repository: { type: 'string' },
        env: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, value: { type: 'string' } },
            required: ['name', 'value'],
          },
        },
      },
      required: ['repository'],
    },
  },
  pipeline: {
    name: 'flutter-pipeline',
    description: 'Builds a Flutter app in a container',
    resource: 'flutter-builder',
    steps: [
      { id: '1', name: 'Start Build Environment', driver: 'container-start' },
      { id: '2', name: 'Clone Repository', driver: 'git-cloner' },
      { id: '3', name: 'Build', driver: 'builder' },
      { id: '4', name: 'Stop Build Environment', driver: 'container-stop', always: true },
    ],
  },
  resource: {
    name: 'build-app',
    resource: 'flutter-builder',
    pipeline: 'flutter-pipeline',
    spec: { repository: 'file:///srv/app.git', env: [] as { name: string; value: string }[] },
  },
};

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Everything the gateway has stored, as its API shows it: definitions, pipelines, every
 * version of every resource, and runs. Bad-input tests compare it before and after.
 */
export async function storedState(url: string, get: (url: string) => Promise<unknown> = getJson): Promise<Record<string, unknown>> {
  const resources = (await get(`${url}/resources`)) as { resource: string; name: string; version: number }[];
  const versions: unknown[] = [];
  for (const r of resources) {
    for (let v = 1; v <= r.version; v++) versions.push(await get(`${url}/resources/${r.resource}/${r.name}/${v}`));
  }
  return {
    definitions: await get(`${url}/resource-definitions`),
    pipelines: await get(`${url}/pipelines`),
    resources,
    versions,
    runs: await get(`${url}/runs?limit=500`),
  };
}
