import Docker from 'dockerode';
import { BuildContainers, DockerCallAbortedError, DockerDeadlineError, formatDeadline } from './build-containers';
import { buildContainerOptionsFromEnv } from './options';

describe('BuildContainers.engine (the deadline of one Docker call)', () => {
  const containers = new BuildContainers(new Docker(), buildContainerOptionsFromEnv({ CONVEYOR_DOCKER_TIMEOUT: '200ms' }));
  const never = (seen: AbortSignal[]) => (abort: AbortSignal) => {
    seen.push(abort);
    return new Promise<never>(() => undefined);
  };

  it('gives up at the deadline with a message naming the call, and aborts the call', async () => {
    const seen: AbortSignal[] = [];
    const t0 = Date.now();
    const err = await containers.engine('inspect container x', never(seen)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DockerDeadlineError);
    expect((err as Error).message).toBe('the Docker engine did not answer within 200ms (inspect container x)');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(seen[0].aborted).toBe(true);
  });

  it("adds a call's own waiting time, and stops sooner when the caller's signal fires", async () => {
    await expect(containers.engine('stop container x', never([]), { extraMs: 1_000 })).rejects.toThrow('within 1.2s (stop container x)');
    const seen: AbortSignal[] = [];
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('timed out after 1s')), 20);
    const err = await containers.engine('remove container x', never(seen), { signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DockerCallAbortedError);
    expect((err as Error).message).toBe('stopped waiting for the Docker engine (remove container x): timed out after 1s');
    expect(seen[0].aborted).toBe(true);
    await expect(containers.engine('list containers', never([]), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(DockerCallAbortedError);
  });

  it('passes answers and errors of the call through, and leaves its signal alone after', async () => {
    const seen: AbortSignal[] = [];
    await expect(containers.engine('ping', async (abort) => (seen.push(abort), 'OK'))).resolves.toBe('OK');
    await expect(containers.engine('ping', async () => Promise.reject(new Error('no such container')))).rejects.toThrow('no such container');
    await new Promise((r) => setTimeout(r, 250));
    expect(seen[0].aborted).toBe(false);
  });

  it('names deadlines as they are configured', () => {
    expect(formatDeadline(500)).toBe('500ms');
    expect(formatDeadline(30_000)).toBe('30s');
    expect(formatDeadline(1_500)).toBe('1.5s');
  });
});
