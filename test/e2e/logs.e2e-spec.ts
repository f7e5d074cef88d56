import { TestSystem } from '../support/system';
import { readSse } from '../support/api';
import { waitFor as poll } from '../support/processes';

jest.setTimeout(120_000);

describe('logs', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await TestSystem.start();
    await sys.startDriver(['printer', 'quiet']);
  });
  afterAll(async () => {
    await sys?.stop();
  });

  it('serves stored lines in order with GET /logs, per run and per driver', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 50 } }, { driver: 'quiet' }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const all = await sys.api.ok<Array<{ line: string; driver: string; stream: string; seq: number }>>('GET', `/logs?runid=${id}`);
    const printed = all.filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(printed).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i + 1}`));
    const quiet = await sys.api.ok<Array<{ driver: string }>>('GET', `/logs?runid=${id}&driver=quiet`);
    expect(quiet.length).toBeGreaterThan(0);
    expect(quiet.every((l) => l.driver === 'quiet')).toBe(true);
    expect((await sys.api.request('GET', '/logs?runid=nope')).status).toBe(400);
    expect((await sys.api.request('GET', '/logs?runid=01aaaaaaaaaaaaaaaaaaaaaaaa')).status).toBe(404);
  });

  it('streams 10,000 lines over SSE in order, without gap or duplicate, across a reconnect with Last-Event-ID', async () => {
    const id = await sys.run([{ driver: 'quiet', config: { sleepMs: 300 } }, { driver: 'printer', config: { lines: 10_000 } }, { driver: 'quiet' }]);
    const url = `${sys.api.baseUrl}/logs/pipeline/${id}`;
    const seen: string[] = [];
    let lastId = '';
    // First connection: read part of the stream live, then drop it.
    await readSse(url, (e) => {
      if (e.event !== 'log') return e.event !== 'end';
      lastId = e.id!;
      const l = JSON.parse(e.data);
      if (l.stream === 'stdout') seen.push(l.line);
      return seen.length < 3_000;
    });
    expect(seen.length).toBe(3_000);
    // Second connection resumes after the last event it saw, and runs to the end event.
    let ended = false;
    await readSse(url, (e) => {
      if (e.event === 'end') {
        ended = true;
        return false;
      }
      if (e.event !== 'log') return true;
      const l = JSON.parse(e.data);
      if (l.stream === 'stdout') seen.push(l.line);
      return true;
    }, { 'Last-Event-ID': lastId });
    expect(ended).toBe(true);
    expect(seen).toHaveLength(10_000);
    expect(seen).toEqual(Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}`));
  });

  it('splits a line longer than the limit into several, losing nothing, and keeps a last line without newline', async () => {
    const id = await sys.run([{ driver: 'printer', config: { longLine: 40_000 } }]);
    expect((await sys.waitForRun(id)).status).toBe('succeeded');
    const out = (await sys.api.ok<Array<{ stream: string; line: string }>>('GET', `/logs?runid=${id}`)).filter((l) => l.stream === 'stdout');
    expect(out.length).toBe(3);
    expect(out.every((l) => l.line.length <= 16 * 1024)).toBe(true);
    expect(out.map((l) => l.line).join('')).toBe('x'.repeat(40_000));
  });

  it('the per-driver stream carries only that driver and ends when the run ends', async () => {
    const id = await sys.run([{ driver: 'printer', config: { lines: 20 } }, { driver: 'quiet', config: { sleepMs: 500 } }]);
    const drivers = new Set<string>();
    let end: { status: string } | undefined;
    await readSse(`${sys.api.baseUrl}/logs/streams/printer/${id}`, (e) => {
      if (e.event === 'end') {
        end = JSON.parse(e.data);
        return false;
      }
      if (e.event === 'log') drivers.add(JSON.parse(e.data).driver);
      return true;
    });
    expect([...drivers]).toEqual(['printer']);
    expect(end?.status).toBe('succeeded');
    await poll('the run record', async () => ((await sys.api.run(id)).status === 'succeeded' ? true : undefined));
  });
});
