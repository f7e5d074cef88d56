import type { ArtifactFile, ArtifactInfo } from '@conveyor/artifacts';
import type { Restored, Saved } from '@conveyor/caches';
import type { JsonObject, PipelineStep, StepMessage, StepOutput, StepResource } from '@conveyor/contracts';

/** Build caches in the JetStream Object Store, shared by all runs (see libs/caches). */
export interface StepCaches {
  /** Restores `key` into `dir`, else the most recently used entry a `restoreKeys` prefix matches. */
  restore(key: string, restoreKeys: string[], dir: string): Promise<Restored>;
  /** Saves `paths` of `dir` under `key` unless an entry of that key exists (one entry per key). */
  save(key: string, paths: string[], dir: string): Promise<Saved>;
}

/** The run's artifacts in the JetStream Object Store, as a step sees them (see libs/artifacts). */
export interface StepArtifacts {
  /** Keeps files (found with `collectArtifacts`) as the run's artifacts, under this step; refused as a whole, storing nothing, over a limit or a name another step keeps. */
  upload(files: ArtifactFile[]): Promise<ArtifactInfo[]>;
  /** The run's artifacts so far. */
  list(): Promise<ArtifactInfo[]>;
  /** Fetches an artifact of the run into `dir` at its name (never overwriting a file there). */
  download(name: string, dir: string): Promise<ArtifactInfo>;
}

/** Where a driver's log lines go: the run's log stream in JetStream, in order. */
export interface StepLogger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  /** Lines a build wrote to stdout or stderr. Text is split on newlines; a partial last line waits for the rest. */
  write(stream: 'stdout' | 'stderr', text: string | Buffer): void;
  /**
   * While many lines are still on their way to JetStream: a promise of when fewer are (undefined
   * otherwise). A producer that can pause (a command's output) waits for it, so that a build
   * printing without pause never has more in flight than NATS takes in time, and no line is lost.
   */
  backlog(): Promise<void> | undefined;
}

/** Everything a driver gets for one attempt of one step. */
export interface StepContext {
  runId: string;
  pipeline: string;
  /** The step as the pipeline defined it when the run started. */
  step: PipelineStep;
  stepIndex: number;
  /** 1 for the first attempt; a redelivery after a crash is a new attempt too. */
  attempt: number;
  /** `cleanup` when the run already failed or was cancelled and only `always` steps run. */
  mode: StepMessage['mode'];
  outcome?: StepMessage['outcome'];
  /** The resource at the version the run was started for. */
  resource: StepResource;
  /** The step's `config` from the pipeline (`{}` when it has none), with `${{ steps.<id>.outputs.<key> }}` filled in. */
  config: JsonObject;
  /** Outputs of the steps that ran before this one, by step id. */
  outputs: Record<string, StepOutput>;
  /**
   * The output of an earlier step: the step of that id, or else the nearest earlier step (in a
   * graph, among those it needs) that ran that driver (e.g. the container from container-start).
   */
  outputOf(idOrDriver: string): StepOutput | undefined;
  agent: { id: string; machine: string };
  log: StepLogger;
  /** Fires when the step times out, the run is cancelled, or the agent shuts down: stop work promptly. */
  signal: AbortSignal;
  /**
   * Values of the secrets that the resource spec's and step config's `env` entries refer to
   * (`{name, secret}`), by secret name. Every log line and result of the step is masked with
   * them; a driver passes them on only to where they are needed (a build container's env).
   */
  secrets?: ReadonlyMap<string, string>;
  /** The run's artifacts: keep files, list, fetch an earlier step's. */
  artifacts: StepArtifacts;
  /** Build caches: restore before the work, save after it. */
  caches: StepCaches;
}

/** What a driver returns. `success: false` fails the attempt (retried while retries remain). */
export interface StepResult {
  success: boolean;
  message?: string;
  /** Handed to later steps as `outputs[stepId].data` and shown in the run record. */
  data?: JsonObject;
}

/** A driver implements one method; the SDK does the rest (acks, retries, hand-off, logs, events). */
export interface StepHandler {
  run(ctx: StepContext): Promise<StepResult>;
}
