import { createServer } from 'node:net';
import { TestSystem } from '../support/system';
import type { AppProcess } from '../support/processes';
import { waitFor } from '../support/processes';

/**
 * GET /metrics of the gateway and the /metrics and /health of a driver agent
 * (CONVEYOR_METRICS_PORT), against a real gateway, real NATS and a test driver process.
 */

type Samples = Map<string, number>;

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]Inf)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line is a HELP, a
 * TYPE or a sample; every sample belongs to a family declared by TYPE before it. Throws on
 * anything else. Keys are `name{a="x",b="y"}` with labels sorted.
 */
function parsePrometheus(text: string): Samples {
  const samples: Samples = new Map();
  const families = new Map<string, string>();
  expect(text.endsWith('\n')).toBe(true);
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    const fail = (why: string) => new Error(`line ${i + 1} ${why}: ${line}`);
    if (line === '') continue; // the format allows empty lines
    if (line.startsWith('# HELP ')) {
      if (!new RegExp(`^# HELP ${NAME} .*$`).test(line)) throw fail('is a bad HELP');
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (!new RegExp(`^${NAME}$`).test(name) || !TYPES.has(type)) throw fail('is a bad TYPE');
      if (families.has(name)) throw fail('declares a family twice');
      families.set(name, type);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw fail('is not a sample');
    const [, name, labels = '', value] = m;
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    if (!family) throw fail('has no TYPE');
    const sorted = (labels.match(new RegExp(LABEL, 'g')) ?? []).sort().join(',');
    const key = `${name}{${sorted}}`;
    if (samples.has(key)) throw fail('repeats a series');
    samples.set(key, value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value));
  }
  return samples;
}

/** The value of one series; labels given in any order. */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
  return samples.get(key);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let sys: TestSystem;
let agent: AppProcess;
let agentPort: number;

async function scrape(url: string): Promise<Samples> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain;.*\bversion=0\.0\.4\b/);
  return parsePrometheus(await res.text());
}

beforeAll(async () => {
  sys = await TestSystem.start();
  agentPort = await freePort();
  agent = await sys.startDriver(['m-work'], { CONVEYOR_METRICS_PORT: String(agentPort) });
}, 60_000);

afterAll(async () => {
  await sys?.stop();
});

describe('metrics', () => {
  it('the gateway serves valid Prometheus text whose counters move when runs happen', async () => {
    const gateway = `${sys.api.baseUrl}/metrics`;
    const before = await scrape(gateway);
    expect(before.has('process_cpu_user_seconds_total{}')).toBe(true);

    const ok = await sys.pipeline([{ driver: 'm-work', config: { lines: 2 } }, { driver: 'm-work' }]);
    const bad = await sys.pipeline([{ driver: 'm-work', config: { failTimes: 5 } }]);
    const okRun = await sys.trigger(ok);
    const badRun = await sys.trigger(bad);
    expect((await sys.waitForRun(okRun)).status).toBe('succeeded');
    expect((await sys.waitForRun(badRun)).status).toBe('failed');

    // Events are counted as they pass; wait (bounded) until the last one of these runs was.
    const after = await waitFor('the run counters to move', async () => {
      const s = await scrape(gateway);
      return value(s, 'conveyor_runs_total', { pipeline: ok, status: 'succeeded' }) === 1 && value(s, 'conveyor_runs_total', { pipeline: bad, status: 'failed' }) === 1 ? s : undefined;
    }, 20_000, 200);
    expect(value(after, 'conveyor_runs_total', { pipeline: ok, status: 'queued' })).toBe(1);
    expect(value(after, 'conveyor_runs', { pipeline: ok, status: 'succeeded' })).toBe(1);
    expect(value(after, 'conveyor_runs', { pipeline: bad, status: 'failed' })).toBe(1);

    const count = (s: Samples, outcome: string) => value(s, 'conveyor_step_duration_seconds_count', { driver: 'm-work', outcome }) ?? 0;
    expect(count(after, 'succeeded') - count(before, 'succeeded')).toBe(2);
    expect(count(after, 'failed') - count(before, 'failed')).toBe(1);
    expect(value(after, 'conveyor_step_duration_seconds_bucket', { driver: 'm-work', outcome: 'succeeded', le: '+Inf' })).toBe(count(after, 'succeeded'));

    expect([...after.entries()].filter(([k]) => k.startsWith('conveyor_agents{driver="m-work",')).map(([, v]) => v)).toEqual([1]);
    expect(value(after, 'conveyor_queue_pending', { driver: 'm-work', machine: '' })).toBe(0);
  }, 90_000);

  it('queue depth counts the work waiting for a driver that has no agent', async () => {
    const pipeline = await sys.pipeline([{ driver: 'm-nobody' }]);
    await sys.trigger(pipeline);
    await sys.trigger(pipeline);
    const s = await waitFor('two pending messages for m-nobody', async () => {
      const m = await scrape(`${sys.api.baseUrl}/metrics`);
      return value(m, 'conveyor_queue_pending', { driver: 'm-nobody', machine: '' }) === 2 ? m : undefined;
    }, 20_000, 200);
    expect(value(s, 'conveyor_runs', { pipeline, status: 'queued' })).toBe(2);
  }, 60_000);

  it('a driver agent serves its own /metrics and /health on CONVEYOR_METRICS_PORT', async () => {
    expect(agent.logs).toContain(`metrics on http://127.0.0.1:${agentPort}/metrics`);
    const base = `http://127.0.0.1:${agentPort}`;
    const s = await scrape(`${base}/metrics`);
    const key = [...s.keys()].find((k) => k.startsWith('conveyor_agent_step_duration_seconds_count{') && k.includes(`agent="${agent.agentId}"`) && k.includes('driver="m-work"') && k.includes('outcome="succeeded"'));
    expect(key).toBeDefined();
    expect(s.get(key!)).toBeGreaterThanOrEqual(2);
    const failed = [...s.keys()].find((k) => k.startsWith('conveyor_agent_step_duration_seconds_count{') && k.includes('outcome="failed"'));
    expect(s.get(failed!)).toBeGreaterThanOrEqual(1);
    expect([...s.entries()].find(([k]) => k.startsWith('conveyor_agent_running_steps{'))?.[1]).toBe(0);

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', state: 'serving', agent: agent.agentId });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  }, 30_000);
});
