import type { Run } from '@conveyor/contracts';
import { runLogs } from '../support/builtin-drivers';
import { BuildSystem, stepOf } from '../support/build-system';
import { expectCleanedUp } from './build-expectations';

jest.setTimeout(120_000);

/**
 * A graph of the built-in drivers on a real Docker engine: container-start, git-cloner, then two
 * builder steps side by side in the run's one container (each with its own log stream), then
 * container-stop. The builds overlap in time and the run takes well under their sum.
 */
describe('a graph of the built-in drivers', () => {
  let build: BuildSystem;

  beforeAll(async () => {
    build = await BuildSystem.start({ CONVEYOR_CONCURRENCY: '2' });
  });
  afterAll(async () => {
    expect(await build?.stop()).toBe(0);
  });

  /** Stores a pipeline of `steps`, starts a run of it for a resource of the same name with `spec`, and waits for its end. */
  const runPipeline = async (name: string, steps: object[], spec: object): Promise<Run> => {
    await build.sys.api.ok('POST', '/pipelines', { name, resource: 'thing', steps });
    const { runid } = await build.sys.api.ok<{ runid: string }>('POST', '/resources', { name, resource: 'thing', pipeline: name, spec });
    return build.sys.waitForRun(runid);
  };
  const linesOf = async (run: Run, stepId: string) => (await runLogs(build.sys.api, run.id, 'builder')).filter((l) => l.stepId === stepId).map((l) => l.line);

  it('runs two builds at once in the run\'s container after the clone, then stops the container', async () => {
    const run = await runPipeline('parallel-builds', [
      { id: 'start', name: 'Start Build Environment', driver: 'container-start' },
      { id: 'clone', name: 'Clone Git Repository', driver: 'git-cloner' },
      { id: 'build-a', name: 'Build A', driver: 'builder', needs: ['clone'], config: { commands: ['sleep 3', 'echo built-a; cat version.txt'] } },
      { id: 'build-b', name: 'Build B', driver: 'builder', needs: ['clone'], config: { commands: ['sleep 3', 'echo built-b'] } },
      { id: 'stop', name: 'Stop Build Environment', driver: 'container-stop', needs: ['build-a', 'build-b'], always: true },
    ], { repository: build.repo.url });
    expect(run.status).toBe('succeeded');
    expect(run.steps.map((s) => [s.id, s.status])).toEqual([['start', 'succeeded'], ['clone', 'succeeded'], ['build-a', 'succeeded'], ['build-b', 'succeeded'], ['stop', 'succeeded']]);
    const [a, b] = [stepOf(run, 'build-a'), stepOf(run, 'build-b')];
    // Both on the machine container-start pinned the run to.
    expect(a.machine).toBe(stepOf(run, 'start').machine);
    expect(b.machine).toBe(stepOf(run, 'start').machine);
    const ms = (t?: string) => Date.parse(t!);
    expect(ms(a.startedAt) < ms(b.finishedAt) && ms(b.startedAt) < ms(a.finishedAt)).toBe(true);
    // Two 3 s builds side by side take well under their 6 s sum.
    expect(Math.max(ms(a.finishedAt), ms(b.finishedAt)) - Math.min(ms(a.startedAt), ms(b.startedAt))).toBeLessThan(5_500);
    expect(await linesOf(run, 'build-a')).toEqual(expect.arrayContaining(['built-a', 'main-3']));
    expect(await linesOf(run, 'build-b')).toContain('built-b');
    expect(await linesOf(run, 'build-b')).not.toContain('built-a');
    await expectCleanedUp(build, run);
  });

  it('a matrix builder step sees its values as MATRIX_<AXIS> in the container', async () => {
    const run = await runPipeline('matrix-builds', [
      { id: 'start', name: 'Start', driver: 'container-start' },
      { id: 'clone', name: 'Clone', driver: 'git-cloner' },
      { id: 'build', name: 'Build', driver: 'builder', matrix: { flavour: ['plain', 'fancy'] }, config: { commands: ['echo "flavour=$MATRIX_FLAVOUR"'] } },
      { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
    ], { repository: build.repo.url });
    expect(run.status).toBe('succeeded');
    expect(await linesOf(run, 'build-1')).toContain('flavour=plain');
    expect(await linesOf(run, 'build-2')).toContain('flavour=fancy');
    await expectCleanedUp(build, run);
  });

  it('a build\'s $CONVEYOR_OUTPUT lines are its outputs, filled into a later step\'s config; a file over the limit fails the step', async () => {
    const run = await runPipeline('outputs', [
      { id: 'start', name: 'Start', driver: 'container-start' },
      { id: 'clone', name: 'Clone', driver: 'git-cloner' },
      { id: 'version', name: 'Version', driver: 'builder', config: { commands: ['echo "version=$(cat version.txt)" >> "$CONVEYOR_OUTPUT"', 'printf "notes<<END\\nfirst\\nsecond\\nEND\\n" >> "$CONVEYOR_OUTPUT"'] } },
      { id: 'use', name: 'Use', driver: 'builder', config: { commands: ['echo "deploying ${{ steps.version.outputs.version }}"'] } },
      { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
    ], { repository: build.repo.url });
    expect(run.status).toBe('succeeded');
    expect(stepOf(run, 'version').data).toEqual({ version: 'main-3', notes: 'first\nsecond' });
    expect(await linesOf(run, 'use')).toContain('deploying main-3');
    await expectCleanedUp(build, run);

    const failed = await runPipeline('outputs-too-big', [
      { id: 'start', name: 'Start', driver: 'container-start' },
      { id: 'big', name: 'Big', driver: 'builder', config: { commands: ['head -c 70000 /dev/zero | tr "\\0" x | sed "s/^/big=/" >> "$CONVEYOR_OUTPUT"'] } },
      { id: 'stop', name: 'Stop', driver: 'container-stop', always: true },
    ], {});
    expect(failed.status).toBe('failed');
    expect(stepOf(failed, 'big').message).toBe("$CONVEYOR_OUTPUT holds more than 65536 bytes, the limit of a step's outputs");
    await expectCleanedUp(build, failed);
  });
});
