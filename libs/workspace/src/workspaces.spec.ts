import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newRunId } from '@conveyor/contracts';
import { DEFAULT_WORKSPACE_ROOT, InvalidRunIdError, Workspaces, workspaceRootFromEnv } from './workspaces';

describe('Workspaces', () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'conveyor-ws-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('reads the root from CONVEYOR_WORKSPACE_ROOT and refuses a relative one', () => {
    expect(workspaceRootFromEnv({})).toBe(DEFAULT_WORKSPACE_ROOT);
    expect(workspaceRootFromEnv({ CONVEYOR_WORKSPACE_ROOT: '/srv/ws/' })).toBe('/srv/ws');
    expect(() => workspaceRootFromEnv({ CONVEYOR_WORKSPACE_ROOT: 'ws' })).toThrow(/absolute/);
  });

  it('gives each run a folder under the root and refuses run ids that are not run ids', () => {
    const ws = new Workspaces(join(base, 'root'));
    const runId = newRunId();
    expect(ws.workspaceFor(runId)).toBe(join(base, 'root', runId));
    for (const bad of ['..', '../etc', 'a/b', '', '/etc', '0123456789abcdefghjkmnpqr/', '0123456789ABCDEFGHJKMNPQRS']) {
      expect(() => ws.workspaceFor(bad)).toThrow(InvalidRunIdError);
    }
  });

  it('creates the root 0755 and the run folder, and removes it recursively; removing twice is fine', async () => {
    const root = join(base, 'deep', 'root');
    const ws = new Workspaces(root);
    const runId = newRunId();
    const dir = await ws.ensure(runId);
    expect(await ws.ensure(runId)).toBe(dir);
    expect(statSync(root).mode & 0o777).toBe(0o755);
    mkdirSync(join(dir, 'src', 'nested'), { recursive: true });
    writeFileSync(join(dir, 'src', 'nested', 'file.txt'), 'x');
    await ws.remove(runId);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(root)).toBe(true);
    await expect(ws.remove(runId)).resolves.toBeUndefined();
  });

  it('lists the run folders of the root, and nothing else in it', async () => {
    const ws = new Workspaces(join(base, 'root'));
    expect(await ws.list()).toEqual([]);
    const [a, b] = [newRunId(), newRunId()].sort();
    await ws.ensure(a);
    await ws.ensure(b);
    mkdirSync(join(base, 'root', 'not-a-run'));
    writeFileSync(join(base, 'root', newRunId()), 'a file, not a folder');
    const listed = await ws.list();
    expect(listed.map((w) => w.runId)).toEqual([a, b]);
    expect(listed[0].dir).toBe(ws.workspaceFor(a));
    expect(Math.abs(listed[0].modifiedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });
});
