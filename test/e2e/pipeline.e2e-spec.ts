import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { type BuiltinDriverFleet, buildOutput, runLogs } from '../support/builtin-drivers';
import { BuildSystem, stepOf } from '../support/build-system';
import { expectCleanedUp } from './build-expectations';
import { git, makeTestRepository, type TestRepository } from '../support/git-repo';
import type { TestSystem } from '../support/system';

jest.setTimeout(120_000);

/**
 * Issue 4: the tutorial's pipeline (container-start, git-cloner, builder, container-stop) on a
 * real Docker engine, with real repositories served over file://, the four driver apps running
 * as real processes from dist/. Interruptions (cancel, timeout, a killed driver) are in
 * pipeline-interruptions.e2e-spec.ts.
 */
describe('the built-in build pipeline', () => {
  let build: BuildSystem;
  let sys: TestSystem;
  let fleet: BuiltinDriverFleet;
  let repo: TestRepository;
  let docker: Docker;

  beforeAll(async () => {
    build = await BuildSystem.start();
    ({ sys, fleet, repo, docker } = build);
  });
  afterAll(async () => {
    // Everything the suite's runs made was removed by container-stop, not by this hook.
    expect(await build?.stop()).toBe(0);
  });

  it('builds a repository: each step succeeds, the output is in the logs in order, nothing is left', async () => {
    const id = await build.startBuild({
      repository: repo.url,
      commands: ['echo "line 1"', 'echo "line 2" >&2', 'for i in 3 4 5; do echo "line $i"; done', 'cat version.txt'],
    });
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([['start', 'succeeded'], ['clone', 'succeeded'], ['build', 'succeeded'], ['stop', 'succeeded']]);
    expect(stepOf(run, 'start').data).toMatchObject({ containerName: fleet.containerName(id), image: 'conveyor/build:latest', reused: false, workspace: join(fleet.workspaceRoot, id) });
    expect(stepOf(run, 'clone').data).toEqual({ commit: repo.main, ref: 'main', reused: false });
    expect(stepOf(run, 'build').message).toBe('4 commands succeeded');
    expect(stepOf(run, 'stop').data).toEqual({ containerName: fleet.containerName(id), removed: true });

    expect(await buildOutput(sys.api, id)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'main-3']);
    const builderLines = await runLogs(sys.api, id, 'builder');
    expect(builderLines.find((l) => l.line === 'line 2')?.stream).toBe('stderr');
    // Each command is announced before its output.
    const texts = builderLines.map((l) => l.line);
    expect(texts.indexOf('$ cat version.txt')).toBeGreaterThan(texts.indexOf('line 5'));
    expect(texts.indexOf('$ cat version.txt')).toBeLessThan(texts.indexOf('main-3'));
    expect(builderLines.map((l) => l.seq)).toEqual([...builderLines.map((l) => l.seq)].sort((a, b) => a - b));

    const all = await runLogs(sys.api, id);
    expect(all.some((l) => l.driver === 'container-start' && l.line.includes(`created container ${fleet.containerName(id)}`))).toBe(true);
    expect(all.some((l) => l.driver === 'git-cloner' && l.line.includes(`checked out main at commit ${repo.main}`))).toBe(true);
    expect(all.some((l) => l.driver === 'container-stop' && l.line.includes(`stopped and removed container ${fleet.containerName(id)}`))).toBe(true);
    await expectCleanedUp(build, run);
  });

  it('fails the run at the first failing command, with its exit code, and still removes container and workspace', async () => {
    const id = await build.startBuild({ repository: repo.url, commands: ['echo before', 'cat version.txt && exit 3', 'echo never'] });
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('failed');
    expect(stepOf(run, 'build')).toMatchObject({ status: 'failed', message: 'command 2 of 3 ("cat version.txt && exit 3") exited with code 3' });
    expect(await buildOutput(sys.api, id)).toEqual(['before', 'main-3']);
    await expectCleanedUp(build, run);
  });

  it('checks out the ref the spec names: default branch, branch, annotated tag, commit', async () => {
    const cases = [
      { ref: undefined, content: 'main-3', commit: repo.main, shownRef: 'main' },
      { ref: 'feature', content: 'feature-1', commit: repo.feature, shownRef: 'feature' },
      { ref: 'v1', content: 'main-1', commit: repo.v1, shownRef: 'v1' },
      { ref: repo.mainCommits[1], content: 'main-2', commit: repo.mainCommits[1], shownRef: repo.mainCommits[1] },
    ];
    // Started together: four runs share the drivers at once.
    const ids = await Promise.all(cases.map((c) => build.startBuild({ repository: repo.url, ...(c.ref ? { ref: c.ref } : {}), commands: ['cat version.txt'] })));
    for (const [i, c] of cases.entries()) {
      const run = await sys.waitForRun(ids[i]);
      expect(run.status).toBe('succeeded');
      expect(stepOf(run, 'clone').data).toMatchObject({ commit: c.commit, ref: c.shownRef });
      expect(await buildOutput(sys.api, ids[i])).toEqual([c.content]);
      await expectCleanedUp(build, run);
    }
  });

  it('runs commands with the env and in the workdir, the spec winning over the step config', async () => {
    const withApp = makeTestRepository();
    try {
      mkdirSync(join(withApp.dir, 'app'));
      writeFileSync(join(withApp.dir, 'app', 'hello.txt'), 'hello from app/\n');
      git(withApp.dir, 'add', '-A');
      git(withApp.dir, 'commit', '-q', '-m', 'app folder');
      const id = await build.startBuild(
        { repository: withApp.url, workdir: 'app', env: [{ name: 'GREETING', value: 'hello world' }, { name: 'QUOTED', value: `it's "quoted" $HOME` }] },
        {
          config: {
            commands: ['pwd', 'cat hello.txt', 'echo "$GREETING|$FROM_CONFIG|$QUOTED"'],
            env: [{ name: 'GREETING', value: 'the config loses' }, { name: 'FROM_CONFIG', value: 'from the config' }],
            image: 'conveyor/build:latest',
          },
        },
      );
      const run = await sys.waitForRun(id);
      expect(run.status).toBe('succeeded');
      expect(await buildOutput(sys.api, id)).toEqual(['/workspace/app', 'hello from app/', `hello world|from the config|it's "quoted" $HOME`]);
      await expectCleanedUp(build, run);
    } finally {
      withApp.dispose();
    }
  });

  it('fails clearly when the repository does not exist or may not be cloned, and cleans up', async () => {
    const missing = `file://${join(repo.dir, '..', 'no-such-repository')}`;
    const cases = [
      { repository: missing, message: `cannot clone ${missing}` },
      // Nothing listens on port 1: git fails to connect; the password never shows.
      { repository: 'http://builder:s3cret@127.0.0.1:1/app.git', message: 'cannot clone http://***@127.0.0.1:1/app.git' },
      { repository: 'ext::sh -c touch% /tmp/conveyor-pwned', message: 'is refused' },
      { repository: '--upload-pack=touch /tmp/conveyor-pwned', message: 'is refused' },
    ];
    const ids = await Promise.all(cases.map((c) => build.startBuild({ repository: c.repository, commands: ['echo never'] })));
    for (const [i, c] of cases.entries()) {
      const run = await sys.waitForRun(ids[i]);
      expect(run.status).toBe('failed');
      expect(stepOf(run, 'clone').status).toBe('failed');
      expect(stepOf(run, 'clone').message).toContain(c.message);
      expect(stepOf(run, 'clone').message).not.toContain('s3cret');
      expect(stepOf(run, 'build').status).toBe('skipped');
      expect(await buildOutput(sys.api, ids[i])).toEqual([]);
      await expectCleanedUp(build, run);
    }
    expect(existsSync('/tmp/conveyor-pwned')).toBe(false);
  });

  it('fails the first step with a precise message for a bad spec or a missing image, and cleans up', async () => {
    const cases = [
      { spec: { repository: repo.url, workdir: '../../etc' }, failed: 'start', message: 'resource spec: "workdir" "../../etc" leaves the repository ("..")' },
      { spec: { repository: repo.url, env: [{ name: 'A B', value: '1' }] }, failed: 'start', message: 'resource spec: "env[0].name" "A B" is not a variable name' },
      { spec: { repository: repo.url, commands: 'make' }, failed: 'start', message: 'resource spec: "commands" must be an array of command lines, not a string' },
      {
        spec: { repository: repo.url, image: 'conveyor/not-here:1' },
        failed: 'start',
        message: 'image conveyor/not-here:1 is missing locally and could not be pulled: pulling is disabled (CONVEYOR_IMAGE_PULL=never)',
      },
      { spec: { commands: ['true'] }, failed: 'clone', message: 'nothing to clone: the resource spec has no "repository"' },
    ];
    const ids = await Promise.all(cases.map((c) => build.startBuild(c.spec)));
    for (const [i, c] of cases.entries()) {
      const run = await sys.waitForRun(ids[i]);
      expect(run.status).toBe('failed');
      expect(stepOf(run, c.failed)).toMatchObject({ status: 'failed' });
      expect(stepOf(run, c.failed).message).toContain(c.message);
      expect(stepOf(run, 'build').status).toBe('skipped');
      await expectCleanedUp(build, run);
    }
  });

  it('succeeds with a log line saying so when there are no commands', async () => {
    const id = await build.startBuild({ repository: repo.url });
    const run = await sys.waitForRun(id);
    expect(run.status).toBe('succeeded');
    expect(stepOf(run, 'build').message).toBe('no commands to run');
    expect((await runLogs(sys.api, id, 'builder')).some((l) => l.line.startsWith('no commands to run'))).toBe(true);
    await expectCleanedUp(build, run);
  });

  it('leaves no container and no workspace of the suite behind', async () => {
    expect(await fleet.containers(docker)).toEqual([]);
    expect(fleet.workspaces()).toEqual([]);
  });
});
