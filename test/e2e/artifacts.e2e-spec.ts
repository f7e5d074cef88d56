import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonObject, Run } from '@conveyor/contracts';
import { BuildSystem, stepOf } from '../support/build-system';
import { BuiltinDriverFleet, buildOutput, tutorialPipeline } from '../support/builtin-drivers';
import { ensureCBuildImage } from '../support/docker';
import { git } from '../support/git-repo';
import { waitFor } from '../support/processes';

jest.setTimeout(180_000);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** What `seq 1 20000` prints: the file a build makes, made here by hand. */
const NUMBERS = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `${i + 1}\n`).join(''));

/**
 * Artifacts in the JetStream Object Store, end to end with the built-in drivers on Docker: a
 * build keeps files its globs match, the API lists and streams them (ETag, Range), a later step
 * fetches one into its workspace, and hostile workspaces (symlinks out, `..`, a sparse file over
 * the limit, control characters) are refused with a reason, with nothing uploaded.
 */
describe('artifacts (built-in drivers, Docker, Object Store)', () => {
  let build: BuildSystem;
  let seq = 0;

  beforeAll(async () => {
    build = await BuildSystem.start();
  });
  afterAll(async () => {
    expect(await build?.stop()).toBe(0);
  });

  const runBuild = async (config: JsonObject, spec: JsonObject = {}): Promise<Run> => {
    const name = `art-${++seq}`;
    await build.sys.api.ok('POST', '/pipelines', tutorialPipeline(name, 'thing', { config }));
    const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec: { repository: build.repo.url, ...spec } });
    return build.sys.waitForRun(runid, undefined, 120_000);
  };
  const fetchRaw = (path: string, headers: Record<string, string> = {}) => fetch(`${build.sys.api.baseUrl}${path}`, { headers });
  const logsOf = (runId: string) => buildOutput(build.sys.api, runId);

  it('keeps what the globs match, lists it with size and sha256, and streams it byte for byte (ETag, Range)', async () => {
    const run = await runBuild({
      commands: ['mkdir -p out/sub', 'seq 1 20000 > out/numbers.txt', 'cp version.txt out/sub/version.txt', 'echo not kept > out/skip.log'],
      artifacts: ['out/*.txt', 'out/**/version.txt'],
    });
    expect(run.status).toBe('succeeded');
    const list = await build.sys.api.ok<any[]>('GET', `/runs/${run.id}/artifacts`);
    expect(list).toEqual([
      { name: 'out/numbers.txt', step: 'build', size: NUMBERS.length, sha256: sha256(NUMBERS), contentType: 'text/plain; charset=utf-8', created: expect.any(String) },
      { name: 'out/sub/version.txt', step: 'build', size: 7, sha256: sha256(Buffer.from('main-3\n')), contentType: 'text/plain; charset=utf-8', created: expect.any(String) },
    ]);

    const whole = await fetchRaw(`/runs/${run.id}/artifacts/out/numbers.txt`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(NUMBERS.length));
    expect(whole.headers.get('etag')).toBe(`"${sha256(NUMBERS)}"`);
    expect(Buffer.from(await whole.arrayBuffer()).equals(NUMBERS)).toBe(true);

    const part = await fetchRaw(`/runs/${run.id}/artifacts/out/numbers.txt`, { range: 'bytes=100000-100009' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100000-100009/${NUMBERS.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(NUMBERS.subarray(100000, 100010))).toBe(true);
    const tail = await fetchRaw(`/runs/${run.id}/artifacts/out/numbers.txt`, { range: 'bytes=-6' });
    expect(Buffer.from(await tail.arrayBuffer()).toString()).toBe('20000\n');
    expect((await fetchRaw(`/runs/${run.id}/artifacts/out/numbers.txt`, { range: `bytes=${NUMBERS.length}-` })).status).toBe(416);
    expect((await fetchRaw(`/runs/${run.id}/artifacts/out/numbers.txt`, { 'if-none-match': `"${sha256(NUMBERS)}"` })).status).toBe(304);
    expect((await fetchRaw(`/runs/${run.id}/artifacts/out/nope.txt`)).status).toBe(404);
    expect((await fetchRaw(`/runs/${'0'.repeat(26)}/artifacts`)).status).toBe(404);
  });

  it('a later step fetches an earlier step\'s artifact into its workspace before its commands', async () => {
    const name = `handoff-${++seq}`;
    await build.sys.api.ok('POST', '/pipelines', {
      name,
      resource: 'thing',
      steps: [
        { id: 'start', name: 'Start', driver: 'container-start' },
        { id: 'clone', name: 'Clone', driver: 'git-cloner' },
        { id: 'make', name: 'Make', driver: 'builder', config: { commands: ['mkdir -p dist', 'echo "binary of $(cat version.txt)" > dist/app'], artifacts: ['dist/app'] } },
        { id: 'wipe', name: 'Wipe', driver: 'builder', config: { commands: ['rm -rf dist'] } },
        { id: 'deploy', name: 'Deploy', driver: 'builder', config: { commands: ['cat dist/app'], artifacts: { needs: ['dist/app'] } } },
        { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
      ],
    });
    const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec: { repository: build.repo.url } });
    const run = await build.sys.waitForRun(runid, undefined, 120_000);
    expect(run.status).toBe('succeeded');
    const lines = (await build.sys.api.ok<Array<{ stepId: string; line: string }>>('GET', `/logs?runid=${runid}&driver=builder`)).filter((l) => l.stepId === 'deploy').map((l) => l.line);
    expect(lines).toContain('binary of main-3');
    expect(lines.some((l) => /^fetched artifact dist\/app \(\d+ B, sha256 [0-9a-f]{12}, from step make\) in \d+ ms$/.test(l))).toBe(true);
  });

  it('hands a binary from a build on one machine to a deploy on another, in one run: container-stop releases the machine', async () => {
    const name = `machines-${++seq}`;
    await build.sys.api.ok('POST', '/pipelines', {
      name,
      resource: 'thing',
      steps: [
        { id: 'start', name: 'Start', driver: 'container-start' },
        { id: 'clone', name: 'Clone', driver: 'git-cloner' },
        { id: 'make', name: 'Make', driver: 'builder', config: { commands: ['mkdir -p dist', 'echo "binary of $(cat version.txt)" > dist/app'], artifacts: ['dist/app'] } },
        { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
        { id: 'gate', name: 'Gate', driver: 'approval', approval: true },
        { id: 'start-2', name: 'Start again', driver: 'container-start' },
        { id: 'deploy', name: 'Deploy', driver: 'builder', config: { commands: ['test ! -e version.txt', 'cat dist/app'], artifacts: { needs: ['dist/app'] } } },
        { id: 'stop-2', name: 'Stop again', driver: 'container-stop', always: true },
      ],
    });
    const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec: { repository: build.repo.url } });
    // While the gate waits, this machine stops starting containers and machine b comes up: the
    // run's second half can only go there.
    await waitForStep(runid, 'gate', 'waiting');
    const first = build.fleet.processes.find((p) => p.name.includes('container-start') && p.alive)!;
    await first.stop('SIGTERM');
    const other = new BuiltinDriverFleet(build.sys.nats.url, { CONVEYOR_MACHINE_ID: 'machine-b' });
    try {
      await other.startAll();
      await build.sys.api.ok('POST', `/runs/${runid}/steps/gate/approve`, { comment: 'deploy from machine b' });
      const run = await build.sys.waitForRun(runid, undefined, 120_000);
      if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${run.message}; steps ${JSON.stringify(run.steps.map((x) => [x.id, x.status, x.machine, x.message]))}`);
      expect(stepOf(run, 'make').machine).toBe(build.fleet.machine);
      expect(stepOf(run, 'stop').machine).toBe(build.fleet.machine);
      for (const id of ['start-2', 'deploy', 'stop-2']) expect(stepOf(run, id).machine).toBe('machine-b');
      const lines = (await build.sys.api.ok<Array<{ stepId: string; line: string }>>('GET', `/logs?runid=${runid}&driver=builder`)).filter((l) => l.stepId === 'deploy').map((l) => l.line);
      expect(lines).toContain('binary of main-3');
      expect(lines.some((l) => /^fetched artifact dist\/app \(\d+ B, sha256 [0-9a-f]{12}, from step make\)/.test(l))).toBe(true);
    } finally {
      expect(await other.stop()).toBe(0);
      await build.fleet.start('container-start');
    }
  });

  const waitForStep = (runId: string, stepId: string, status: string) =>
    waitFor(`step ${stepId} of run ${runId} to be ${status}`, async () => (stepOf(await build.sys.api.run(runId), stepId).status === status ? true : undefined), 60_000, 100);

  it.each([
    ['a symlink to a file outside the workspace', ['mkdir -p out', 'ln -s /etc/passwd out/passwd'], ['out/*'], /artifact "out\/passwd" is refused: it is a symlink to a path outside the workspace/],
    ['a glob with ..', ['true'], ['../*'], /artifact glob "\.\.\/\*" is refused: it leaves the workspace/],
    ['an absolute glob', ['true'], ['/etc/passwd'], /is an absolute path/],
    ['a sparse 2 GiB file over the limit', ['mkdir -p out', 'echo small > out/a.txt', 'dd if=/dev/zero of=out/huge.bin bs=1 count=0 seek=2147483648'], ['out/*'], /artifact "out\/huge.bin" is 2\.0 GiB, over the limit of 1\.0 GiB a file/],
    ['a name with control characters', ['mkdir -p out', 'touch "out/a$(printf "\\001")b.txt"'], ['out/*'], /its name contains control characters/],
    ['a glob that matches nothing', ['true'], ['dist/*.tar.gz'], /artifact glob "dist\/\*\.tar\.gz" matched no file/],
  ])('refuses %s with a reason, uploading nothing', async (_what, commands, artifacts, why) => {
    const run = await runBuild({ commands, artifacts });
    expect(run.status).toBe('failed');
    expect(stepOf(run, 'build').message).toMatch(why);
    expect(await build.sys.api.ok('GET', `/runs/${run.id}/artifacts`)).toEqual([]);
  });

  it('an optional glob may match nothing; with when: always a failed build still keeps its files', async () => {
    const optional = await runBuild({ commands: ['true'], artifacts: { paths: ['nothing/*'], optional: true } });
    expect(optional.status).toBe('succeeded');
    const failed = await runBuild({ commands: ['echo "it broke" > report.txt', 'exit 3'], artifacts: { paths: ['report.txt'], when: 'always' } });
    expect(failed.status).toBe('failed');
    expect(stepOf(failed, 'build').message).toMatch(/exited with code 3/);
    expect((await build.sys.api.ok<any[]>('GET', `/runs/${failed.id}/artifacts`)).map((a) => a.name)).toEqual(['report.txt']);
  });

  it('the seed pipeline builds the example C project in conveyor/build-c and keeps its binary, byte for byte the one built by hand', async () => {
    await ensureCBuildImage();
    const examples = join(__dirname, '..', '..', 'deploy', 'examples');
    const work = mkdtempSync(join(tmpdir(), 'conveyor-c-app-'));
    try {
      const repo = join(work, 'repo');
      const byHand = join(work, 'by-hand');
      for (const dir of [repo, byHand]) {
        mkdirSync(dir);
        for (const f of ['hello.c', 'Makefile', 'README.md']) copyFileSync(join(examples, 'c-app', f), join(dir, f));
      }
      git(work, 'init', '-q', '-b', 'main', repo);
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '-m', 'example app');
      const api = (f: string) => JSON.parse(readFileSync(join(examples, 'api', f), 'utf8'));
      await build.sys.api.ok('POST', '/resource-definitions', api('flutter-builder.definition.json'));
      await build.sys.api.ok('POST', '/pipelines', api('flutter-pipeline.pipeline.json'));
      const body = api('example-app.resource.json');
      body.spec.repository = `file://${repo}`;
      const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', body);
      const run = await build.sys.waitForRun(runid, undefined, 120_000);
      expect(run.status).toBe('succeeded');
      expect((await logsOf(run.id)).some((l) => l === 'hello from a C program built by Conveyor')).toBe(true);

      // The same make in the same image, by hand.
      execFileSync('docker', ['run', '--rm', '--network', 'none', '-v', `${byHand}:/workspace`, 'conveyor/build-c:latest', 'make'], { stdio: 'pipe', timeout: 120_000 });
      const expected = readFileSync(join(byHand, 'hello'));
      const [listed] = await build.sys.api.ok<any[]>('GET', `/runs/${run.id}/artifacts`);
      expect(listed).toMatchObject({ name: 'hello', step: '3', size: expected.length, sha256: sha256(expected), contentType: 'application/octet-stream' });
      const got = Buffer.from(await (await fetchRaw(`/runs/${run.id}/artifacts/hello`)).arrayBuffer());
      expect(got.equals(expected)).toBe(true);
      const head = await fetchRaw(`/runs/${run.id}/artifacts/hello`, { range: 'bytes=0-3' });
      expect(head.status).toBe(206);
      expect(Buffer.from(await head.arrayBuffer()).toString('latin1')).toBe('\x7fELF');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000);

  describe('caches', () => {
    const logOf = async (run: Run) => (await build.sys.api.ok<Array<{ stepId: string; line: string }>>('GET', `/logs?runid=${run.id}&driver=builder`)).map((l) => l.line);
    const USE = ['if [ -f deps/data.txt ]; then echo "found $(cat deps/data.txt)"; else echo "no deps"; fi', 'mkdir -p deps && echo "made at $(cat version.txt)" > deps/data.txt'];

    it('a first run misses and saves; the next restores before its first command; restoreKeys fall back to the newest prefix match', async () => {
      const cache = [{ key: "deps-${{ hashFiles('version.txt') }}", paths: ['deps'], restoreKeys: ['deps-'] }];
      const first = await runBuild({ commands: USE, cache });
      expect(first.status).toBe('succeeded');
      const firstLog = await logOf(first);
      expect(firstLog).toContain('no deps');
      expect(firstLog.some((l) => /^cache deps-[0-9a-f]{64}: miss$/.test(l))).toBe(true);
      expect(firstLog.some((l) => /^cache deps-[0-9a-f]{64}: saved \d+ B in \d+ ms$/.test(l))).toBe(true);

      const second = await runBuild({ commands: USE, cache });
      const secondLog = await logOf(second);
      expect(secondLog.some((l) => /^cache deps-[0-9a-f]{64}: restored it, \d+ B, in \d+ ms$/.test(l))).toBe(true);
      expect(secondLog).toContain('found made at main-3');
      // An exact hit is not saved again.
      expect(secondLog.some((l) => / saved /.test(l))).toBe(false);

      // Another key (the hashed file differs on this branch): the restoreKeys prefix finds the entry above.
      const other = await runBuild({ commands: USE, cache }, { ref: 'feature' });
      const otherLog = await logOf(other);
      expect(otherLog.some((l) => /^cache deps-[0-9a-f]{64}: restored deps-[0-9a-f]{64} \(a restoreKeys match\)/.test(l))).toBe(true);
      // Restored from main's entry into the feature branch's build.
      expect(otherLog).toContain('found made at main-3');
      expect(otherLog.some((l) => /: saved \d+ B/.test(l))).toBe(true);

      const entries = await build.sys.api.ok<Array<{ key: string; size: number; run: string }>>('GET', '/caches');
      expect(entries.filter((e) => e.key.startsWith('deps-')).map((e) => e.run).sort()).toEqual([first.id, other.id].sort());
    });

    it('two runs saving one key at once store one entry', async () => {
      const cache = [{ key: 'shared-once', paths: ['deps'] }];
      const name = `cache-race-${++seq}`;
      await build.sys.api.ok('POST', '/pipelines', tutorialPipeline(name, 'thing', { config: { commands: USE, cache } }));
      const start = (n: number) => build.sys.api.ok<{ runid: string }>('POST', '/resources', { name: `${name}-${n}`, resource: 'thing', pipeline: name, spec: { repository: build.repo.url } });
      const ids = await Promise.all([start(1), start(2)]);
      const runs = await Promise.all(ids.map((r) => build.sys.waitForRun(r.runid, undefined, 120_000)));
      expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
      const saved = (await Promise.all(runs.map(logOf))).flat().filter((l) => /^cache shared-once: saved /.test(l));
      expect(saved).toHaveLength(1);
      expect((await build.sys.api.ok<Array<{ key: string }>>('GET', '/caches')).filter((e) => e.key === 'shared-once')).toHaveLength(1);
      expect((await build.sys.api.request('DELETE', '/caches/shared-once')).status).toBe(204);
      expect((await build.sys.api.request('DELETE', '/caches/shared-once')).status).toBe(404);
      expect((await build.sys.api.request('DELETE', '/caches/bad%2Fkey')).status).toBe(400);
    });

    it('never archives a host file through a symlink, and never restores through one', async () => {
      const outside = mkdtempSync(join(tmpdir(), 'conveyor-cache-outside-'));
      try {
        // Save side: deps -> a host directory, then the cache path deps/secret.
        writeFileSync(join(outside, 'secret'), 'host secret');
        const saving = await runBuild({ commands: [`ln -s ${outside} deps`], cache: [{ key: 'hostile-save', paths: ['deps/secret'] }] });
        expect(saving.status).toBe('succeeded');
        expect(await logOf(saving)).toContain('warning: cache hostile-save: not saved: cache path "deps/secret" leads outside the workspace (through a symlink); not saved');
        expect((await build.sys.api.ok<Array<{ key: string }>>('GET', '/caches')).some((e) => e.key === 'hostile-save')).toBe(false);

        // Restore side: an entry with deps/data.txt, restored into a workspace where deps links out.
        await runBuild({ commands: USE, cache: [{ key: 'hostile-restore', paths: ['deps'] }] });
        const name = `cache-link-${++seq}`;
        await build.sys.api.ok('POST', '/pipelines', {
          name,
          resource: 'thing',
          steps: [
            { id: 'start', name: 'Start', driver: 'container-start' },
            { id: 'clone', name: 'Clone', driver: 'git-cloner' },
            { id: 'link', name: 'Link', driver: 'builder', config: { commands: [`ln -s ${outside} deps`] } },
            { id: 'use', name: 'Use', driver: 'builder', config: { commands: ['test -d deps && ! test -L deps && test -f deps/data.txt && echo "a directory, not a link"'], cache: [{ key: 'hostile-restore', paths: ['deps'] }] } },
            { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
          ],
        });
        const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec: { repository: build.repo.url } });
        const run = await build.sys.waitForRun(runid, undefined, 120_000);
        expect(run.status).toBe('succeeded');
        // node-tar replaces the link with a directory of the workspace instead of writing through it.
        const useLog = await logOf(run);
        expect(useLog.some((l) => /^cache hostile-restore: restored it, \d+ B/.test(l))).toBe(true);
        expect(useLog).toContain('a directory, not a link');
        expect(readdirSync(outside)).toEqual(['secret']);
      } finally {
        rmSync(outside, { recursive: true, force: true });
      }
    });
  });
});
