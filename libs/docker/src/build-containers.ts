import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import Docker from 'dockerode';
import { RUN_ID_PATTERN } from '@conveyor/contracts';
import { EXEC_KILLER, EXEC_WRAPPER } from './exec-scripts';
import { type BuildContainerOptions, DEFAULT_BUILD_IMAGE } from './options';

export const DOCKER = Symbol('DOCKER');
export const BUILD_CONTAINER_OPTIONS = Symbol('BUILD_CONTAINER_OPTIONS');

/**
 * The part of a step's logger this lib writes to. A StepLogger from @conveyor/driver-sdk fits;
 * kept structural so that the lib does not depend on the SDK.
 */
export interface ProgressLog {
  info(line: string): void;
  warn(line: string): void;
}

export const LABELS = {
  run: 'conveyor.run',
  agent: 'conveyor.agent',
  machine: 'conveyor.machine',
  managed: 'conveyor.managed',
} as const;

export interface EnvVar {
  name: string;
  value: string;
}

export interface StartContainerRequest {
  runId: string;
  /** Defaults to the configured default image. */
  image?: string;
  env?: EnvVar[];
  /** Host directory mounted at /workspace. */
  workspaceDir: string;
  agent: string;
  machine: string;
  /** Extra labels, e.g. `conveyor.test=true`. */
  labels?: Record<string, string>;
  log?: ProgressLog;
  signal?: AbortSignal;
}

export interface StartContainerResult {
  containerId: string;
  name: string;
  image: string;
  /** True when the run's container already existed (a redelivered step) and was reused. */
  reused: boolean;
}

export interface ExecOptions {
  env?: EnvVar[];
  workdir?: string;
  /** Overrides the configured exec user. */
  user?: string;
  signal?: AbortSignal;
  /** Output as it arrives, in the order Docker delivers it. */
  /** Each chunk of the command's output; a promise returned pauses the output until it settles (backpressure). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void | Promise<void>;
}

export interface ExecResult {
  /** null when the exit code could not be read (the process was killed and Docker gave none). */
  exitCode: number | null;
  /** True when `signal` fired and the process was killed. */
  aborted: boolean;
}

export interface RunContainer {
  id: string;
  name: string;
  runId?: string;
  machine?: string;
  state: string;
  /** When the engine created it. */
  createdAt: Date;
  labels: Record<string, string>;
}

/** Statuses dockerode puts on errors from the Engine API. */
function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as { statusCode?: number }).statusCode : undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const json = (err as { json?: { message?: string } }).json;
    return json?.message ?? err.message;
  }
  return String(err);
}

/** "2s", "1.5s", "500ms": how deadlines are named in messages. */
export function formatDeadline(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * A Docker API call that got no answer within its deadline (CONVEYOR_DOCKER_TIMEOUT): the
 * engine hangs or is overloaded. The message names the call, so a failed step says what hung.
 */
export class DockerDeadlineError extends Error {
  constructor(
    readonly call: string,
    readonly deadlineMs: number,
  ) {
    super(`the Docker engine did not answer within ${formatDeadline(deadlineMs)} (${call})`);
  }
}

/** A Docker API call given up because the caller's signal fired (the step's cancel, timeout or shutdown). */
export class DockerCallAbortedError extends Error {
  constructor(readonly call: string, reason: unknown) {
    super(`stopped waiting for the Docker engine (${call}): ${reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted'}`);
  }
}

/** The error to throw for a failed call: deadline and abort errors as they are (they name the call), others under `what`. */
function failure(what: string, err: unknown): Error {
  if (err instanceof DockerDeadlineError || err instanceof DockerCallAbortedError) return err;
  return new Error(`${what}: ${messageOf(err)}`);
}

function envList(env: EnvVar[] | undefined): string[] {
  return (env ?? []).map(({ name, value }) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`environment variable name "${name}" is not valid`);
    return `${name}=${value}`;
  });
}

/** Build containers: one per run and build machine, with a deterministic name, on the local Docker engine. */
@Injectable()
export class BuildContainers {
  constructor(
    @Inject(DOCKER) readonly docker: Docker,
    @Inject(BUILD_CONTAINER_OPTIONS) readonly options: BuildContainerOptions,
  ) {}

  /**
   * The one container name of a run on a build machine: a redelivered container-start finds
   * the container by it. The machine is part of it because a container is only the run's on
   * the machine whose workspace folder it mounts: where two machine ids share one Docker
   * engine (a machine renamed, or a test rig), a retry that moved the run to the other id
   * makes a container of its own instead of taking over one that mounts the wrong folder.
   */
  containerName(runId: string, machine: string): string {
    if (!RUN_ID_PATTERN.test(runId)) throw new Error(`run id "${runId}" is malformed`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(machine)) throw new Error(`machine id "${machine}" is malformed`);
    return `conveyor-${runId}-${machine}`;
  }

  /**
   * One Docker API call with a deadline: CONVEYOR_DOCKER_TIMEOUT (plus `extraMs` for calls that
   * wait by design, such as a stop's grace period). The call gets an abort signal that fires
   * at the deadline or when `signal` (the step's) fires, which tears its request down; the
   * promise settles then even where dockerode does not pass the signal on (image inspect).
   */
  async engine<T>(call: string, fn: (abort: AbortSignal) => Promise<T>, opts: { signal?: AbortSignal; extraMs?: number; deadlineMs?: number } = {}): Promise<T> {
    const deadlineMs = opts.deadlineMs ?? this.options.dockerTimeoutMs + (opts.extraMs ?? 0);
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const given = new Promise<never>((_resolve, reject) => {
      const giveUp = (err: Error) => {
        controller.abort(err);
        reject(err);
      };
      timer = setTimeout(() => giveUp(new DockerDeadlineError(call, deadlineMs)), deadlineMs);
      const outer = opts.signal;
      if (outer) {
        onAbort = () => giveUp(new DockerCallAbortedError(call, outer.reason));
        if (outer.aborted) onAbort();
        else outer.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([fn(controller.signal), given]);
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Makes sure `image` is present locally. A missing image is pulled (bounded by the pull
   * timeout) unless the pull policy is `never`; failure explains how to provide the image.
   */
  async ensureImage(image: string, log?: ProgressLog, signal?: AbortSignal): Promise<void> {
    try {
      await this.engine(`inspect image ${image}`, () => this.docker.getImage(image).inspect(), { signal });
      return;
    } catch (err) {
      if (statusOf(err) !== 404) throw failure(`cannot inspect image ${image}`, err);
    }
    if (this.options.pullPolicy === 'never') {
      throw new Error(this.missingImageMessage(image, 'pulling is disabled (CONVEYOR_IMAGE_PULL=never)'));
    }
    log?.info(`image ${image} is not present locally; pulling it (timeout ${Math.round(this.options.pullTimeoutMs / 1000)} s)`);
    const timeout = AbortSignal.timeout(this.options.pullTimeoutMs);
    const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      await this.pull(image, abort, log);
    } catch (err) {
      if (signal?.aborted) throw new Error(`pulling image ${image} was cancelled`);
      const reason = timeout.aborted ? `the pull did not finish within ${Math.round(this.options.pullTimeoutMs / 1000)} s` : messageOf(err);
      throw new Error(this.missingImageMessage(image, reason));
    }
    log?.info(`pulled image ${image}`);
  }

  private missingImageMessage(image: string, reason: string): string {
    const howTo =
      image === this.options.defaultImage
        ? `build it on this machine with deploy/image/build.sh${image === DEFAULT_BUILD_IMAGE ? '' : ` --tag ${image}`}`
        : `load it on this machine (docker load -i FILE, or docker pull ${image} where a registry is reachable)`;
    return `image ${image} is missing locally and could not be pulled: ${reason}; ${howTo}`;
  }

  private async pull(image: string, signal: AbortSignal, log?: ProgressLog): Promise<void> {
    // The engine may answer a pull only once the registry does: the whole pull, its answer
    // too, has the pull timeout (in `signal`) as its deadline, not the engine's.
    const stream = (await this.docker.pull(image, { abortSignal: signal })) as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
    const onAbort = () => stream.destroy?.(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    // Only status changes per layer are logged: "Downloading" ticks would flood the run's log.
    const lastStatus = new Map<string, string>();
    try {
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { id?: string; status?: string; error?: string }) => {
            if (event.error) return;
            const key = event.id ?? '';
            if (!event.status || lastStatus.get(key) === event.status) return;
            lastStatus.set(key, event.status);
            log?.info(event.id ? `${event.id}: ${event.status}` : event.status);
          },
        );
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Starts the run's container, or reuses it when it already exists (started again if stopped):
   * the step may be a redelivery, or another agent may have raced us to create it.
   */
  async start(req: StartContainerRequest): Promise<StartContainerResult> {
    const name = this.containerName(req.runId, req.machine);
    const image = req.image?.trim() || this.options.defaultImage;
    const existing = await this.reuse(name, req);
    if (existing) return existing;

    await this.ensureImage(image, req.log, req.signal);
    const labels: Record<string, string> = {
      ...(req.labels ?? {}),
      [LABELS.run]: req.runId,
      [LABELS.agent]: req.agent,
      [LABELS.machine]: req.machine,
      [LABELS.managed]: 'true',
    };
    let container: Docker.Container;
    try {
      container = await this.engine(
        `create container ${name}`,
        (abortSignal) =>
          this.docker.createContainer({
            name,
            Image: image,
            // The container idles; the build runs through exec so that each step streams its own output.
            Cmd: ['sleep', 'infinity'],
            WorkingDir: '/workspace',
            Env: envList(req.env),
            Labels: labels,
            HostConfig: {
              Binds: [`${req.workspaceDir}:/workspace`],
              NetworkMode: this.options.network,
              Memory: this.options.memoryBytes,
              NanoCpus: this.options.nanoCpus,
              PidsLimit: this.options.pidsLimit,
              Privileged: false,
              CapDrop: ['ALL'],
              CapAdd: this.options.capAdd,
              SecurityOpt: ['no-new-privileges'],
              Init: this.options.init,
              AutoRemove: false,
              ...(this.options.readOnlyRoot
                ? { ReadonlyRootfs: true, Tmpfs: { '/tmp': `rw,nosuid,nodev,mode=1777,size=${this.options.tmpBytes}` } }
                : {}),
            },
            abortSignal,
          }),
        { signal: req.signal },
      );
    } catch (err) {
      if (statusOf(err) === 409) {
        // Another agent created it between our inspect and create. Docker reserves the name
        // before the container can be inspected, so the inspect may need a few tries.
        for (let i = 0; i < 50; i++) {
          const raced = await this.reuse(name, req);
          if (raced) return raced;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw failure(`cannot create container ${name} from ${image}`, err);
    }
    try {
      await this.engine(`start container ${name}`, (abortSignal) => container.start({ abortSignal }), { signal: req.signal });
    } catch (err) {
      if (statusOf(err) !== 304) throw failure(`container ${name} was created but does not start`, err);
    }
    req.log?.info(`started container ${name} (${container.id.slice(0, 12)}) from ${image}`);
    return { containerId: container.id, name, image, reused: false };
  }

  private async reuse(name: string, req: StartContainerRequest): Promise<StartContainerResult | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.engine(`inspect container ${name}`, (abortSignal) => this.docker.getContainer(name).inspect({ abortSignal }), { signal: req.signal });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw failure(`cannot inspect container ${name}`, err);
    }
    if (info.Config.Labels?.[LABELS.run] !== req.runId) {
      throw new Error(`a container named ${name} exists but does not belong to run ${req.runId}; remove it first`);
    }
    if (!info.State.Running) {
      try {
        await this.engine(`start container ${name}`, (abortSignal) => this.docker.getContainer(info.Id).start({ abortSignal }), { signal: req.signal });
      } catch (err) {
        if (statusOf(err) !== 304) throw failure(`container ${name} exists but does not start`, err);
      }
      req.log?.info(`container ${name} (${info.Id.slice(0, 12)}) already existed and was stopped; started it again`);
    } else {
      req.log?.info(`container ${name} (${info.Id.slice(0, 12)}) already exists and runs; reusing it`);
    }
    return { containerId: info.Id, name, image: info.Config.Image, reused: true };
  }

  /**
   * Runs `/bin/sh -c command` in the container and streams its output. Resolves when the
   * command ends, with its exit code. When `signal` fires, the command and every process it
   * started are killed (TERM, then KILL) and the promise resolves with `aborted: true`.
   *
   * The command's output stream lasts as long as the command: its only deadline is `signal`
   * (the step's timeout). Every call around it (create, start, kill, reading the exit code)
   * has the engine deadline, so a hung engine fails the command instead of hanging it.
   */
  async exec(container: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.signal?.aborted) return { exitCode: null, aborted: true };
    const target = this.docker.getContainer(container);
    const user = opts.user ?? this.options.execUser;
    const pidFile = `/tmp/.conveyor-exec-${randomUUID()}.pid`;
    let exec: Docker.Exec;
    let stream: NodeJS.ReadableStream & { destroy(): void };
    let startAsked = false;
    try {
      exec = await this.engine(
        `create exec in container ${container}`,
        (abortSignal) =>
          target.exec({
            Cmd: ['/bin/sh', '-c', EXEC_WRAPPER, 'conveyor-exec', pidFile, command],
            AttachStdout: true,
            AttachStderr: true,
            AttachStdin: false,
            Tty: false,
            Env: envList(opts.env),
            ...(opts.workdir ? { WorkingDir: opts.workdir } : {}),
            ...(user ? { User: user } : {}),
            abortSignal,
          }),
        { signal: opts.signal },
      );
      // The deadline covers the engine's answer (the upgrade to a raw stream), not the stream.
      startAsked = true;
      stream = (await this.engine(`start exec in container ${container}`, (abortSignal) => exec.start({ hijack: true, stdin: false, abortSignal }), {
        signal: opts.signal,
      })) as NodeJS.ReadableStream & { destroy(): void };
    } catch (err) {
      if (opts.signal?.aborted) {
        // The engine may have started the command before the abort tore the request down.
        if (startAsked) await this.kill(container, pidFile, user);
        return { exitCode: null, aborted: true };
      }
      throw failure(`cannot run a command in container ${container}`, err);
    }
    const sink = (name: 'stdout' | 'stderr') =>
      new Writable({
        write(chunk: Buffer, _enc, done) {
          try {
            const wait = opts.onOutput?.(name, chunk);
            // The demultiplexer ignores its sinks' backpressure: the engine's stream itself is
            // paused, so the command blocks on its full pipe until the sink caught up.
            if (wait instanceof Promise) {
              stream.pause();
              void wait.catch(() => undefined).then(() => stream.resume());
            }
          } catch {
            // A failing log sink must not break the command or the demultiplexer.
          }
          done();
        },
      });
    this.docker.modem.demuxStream(stream, sink('stdout'), sink('stderr'));

    let aborted = false;
    let killed: Promise<boolean> | undefined;
    const ended = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', resolve);
    });
    const onAbort = () => {
      aborted = true;
      killed = this.kill(container, pidFile, user);
      void killed.then((ok) => {
        // If something still holds the output pipe open, stop waiting for it; at once when
        // the engine did not even take the kill.
        setTimeout(() => stream.destroy(), ok ? 2_000 : 0).unref();
      });
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (aborted) {
      // An engine that did not take the kill will not tell the exit code either.
      if (killed && !(await killed)) return { exitCode: null, aborted };
      return { exitCode: await this.exitCodeOf(exec, container).catch(() => null), aborted };
    }
    return { exitCode: await this.exitCodeOf(exec, container), aborted };
  }

  /**
   * Docker may report the exec as running for a moment after its output ended. Bounded as a
   * whole by the engine deadline; null when the engine gives no exit code.
   */
  private async exitCodeOf(exec: Docker.Exec, container: string): Promise<number | null> {
    const until = Date.now() + this.options.dockerTimeoutMs;
    const call = `inspect exec in container ${container}`;
    for (let i = 0; i < 50; i++) {
      const left = until - Date.now();
      if (left <= 0) throw new DockerDeadlineError(call, this.options.dockerTimeoutMs);
      let info: Docker.ExecInspectInfo;
      try {
        info = await this.engine(call, (abortSignal) => exec.inspect({ abortSignal }), { deadlineMs: left });
      } catch (err) {
        if (err instanceof DockerDeadlineError) throw new DockerDeadlineError(call, this.options.dockerTimeoutMs);
        return null;
      }
      if (!info.Running) return info.ExitCode ?? null;
      await new Promise((r) => setTimeout(r, 100));
    }
    return null;
  }

  /** Kills the command of `pidFile` and its session; false when the engine did not take the kill. */
  private async kill(container: string, pidFile: string, user: string): Promise<boolean> {
    try {
      // Same user as the command: without CAP_KILL only the owner may signal it.
      const killer = await this.engine(`create exec in container ${container}`, (abortSignal) =>
        this.docker.getContainer(container).exec({
          Cmd: ['/bin/sh', '-c', EXEC_KILLER, 'conveyor-kill', pidFile, '20'],
          AttachStdout: true,
          AttachStderr: true,
          ...(user ? { User: user } : {}),
          abortSignal,
        }),
      );
      const stream = (await this.engine(`start exec in container ${container}`, (abortSignal) => killer.start({ hijack: true, stdin: false, abortSignal }))) as NodeJS.ReadableStream & {
        destroy(): void;
      };
      stream.resume();
      // The killer waits up to 2 s for the pid file and 2 s between TERM and KILL.
      const bound = setTimeout(() => stream.destroy(), this.options.dockerTimeoutMs + 5_000);
      await new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', resolve);
      });
      clearTimeout(bound);
      return true;
    } catch (err) {
      // A container that is gone already ended the command too.
      return !(err instanceof DockerDeadlineError);
    }
  }

  /**
   * Stops and removes a container with its anonymous volumes; a missing one is success.
   * Each call has the engine deadline (the stop also its grace period); `signal` (the step's
   * own timeout) ends the whole removal sooner when it fires first.
   */
  async stopAndRemove(container: string, opts: { signal?: AbortSignal } = {}): Promise<{ removed: boolean }> {
    const target = this.docker.getContainer(container);
    const { signal } = opts;
    try {
      await this.engine(`stop container ${container}`, (abortSignal) => target.stop({ t: this.options.stopTimeoutSeconds, abortSignal }), {
        signal,
        extraMs: this.options.stopTimeoutSeconds * 1000,
      });
    } catch (err) {
      if (err instanceof DockerDeadlineError || err instanceof DockerCallAbortedError) throw err;
      const status = statusOf(err);
      if (status === 404) return { removed: false };
      // 304: already stopped; anything else: removal with force still ends it.
    }
    try {
      await this.engine(`remove container ${container}`, (abortSignal) => target.remove({ force: true, v: true, abortSignal }), { signal });
      return { removed: true };
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return { removed: false };
      // 409 "removal already in progress": another agent removes it; wait for it to be gone.
      if (status === 409 && (await this.waitGone(target, container, signal))) return { removed: false };
      throw failure(`cannot remove container ${container}`, err);
    }
  }

  private async waitGone(target: Docker.Container, container: string, signal?: AbortSignal): Promise<boolean> {
    for (let i = 0; i < 50; i++) {
      try {
        await this.engine(`inspect container ${container}`, (abortSignal) => target.inspect({ abortSignal }), { signal });
      } catch (err) {
        if (statusOf(err) === 404) return true;
        if (err instanceof DockerDeadlineError || err instanceof DockerCallAbortedError) throw err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  /** Containers this lib made (`conveyor.managed=true`) that carry every label in `labels`. */
  async listRunContainers(labels: Record<string, string> = {}, signal?: AbortSignal): Promise<RunContainer[]> {
    const filters = { label: [`${LABELS.managed}=true`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)] };
    const list = await this.engine('list containers', (abortSignal) => this.docker.listContainers({ all: true, filters, abortSignal }), { signal });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      runId: c.Labels?.[LABELS.run],
      machine: c.Labels?.[LABELS.machine],
      state: c.State,
      createdAt: new Date(c.Created * 1000),
      labels: c.Labels ?? {},
    }));
  }
}
