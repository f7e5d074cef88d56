import type { JsonObject, PipelineSnapshot, RunStatus } from './models';

export const MESSAGE_VERSION = 1;

/** The resource as a step sees it: the exact version the run was started for. */
export interface StepResource {
  type: string;
  name: string;
  version: number;
  spec: JsonObject;
  metadata: JsonObject;
}

/** What an earlier step handed on to later ones. */
export interface StepOutput {
  success: boolean;
  message?: string;
  data?: JsonObject;
  agent?: string;
  machine?: string;
}

/**
 * A unit of work on `<prefix>.steps.<driver>[.<machine>]`. Self-contained: a driver needs
 * nothing but this message (and the run's cancel flag) to do its step and hand on.
 */
export interface StepMessage {
  v: typeof MESSAGE_VERSION;
  runId: string;
  pipeline: PipelineSnapshot;
  resource: StepResource;
  /** Index into `pipeline.steps` of the step to run. */
  stepIndex: number;
  /**
   * `normal` while the run is healthy; `cleanup` once a step failed for good or the run was
   * cancelled, when only `always` steps run.
   */
  mode: 'normal' | 'cleanup';
  /** Why the run is in cleanup mode. */
  outcome?: { status: Extract<RunStatus, 'failed' | 'cancelled'>; stepId?: string; message: string };
  /** Outputs of the steps that ran before this one, by step id. */
  outputs: Record<string, StepOutput>;
  /** The build machine this run is pinned to, once a step asked for affinity. */
  machine?: string;
  createdAt: string;
}

export type StepEventKind = 'started' | 'succeeded' | 'failed' | 'retrying' | 'skipped' | 'cancelled';
export type RunEventKind = 'queued' | 'succeeded' | 'failed' | 'cancelled';

/** Published on `<prefix>.events.<run>.…`; the gateway folds them into the run record. */
export interface RunEvent {
  v: typeof MESSAGE_VERSION;
  runId: string;
  /** `step` events carry the step's id and attempt. */
  scope: 'step' | 'run';
  kind: StepEventKind | RunEventKind;
  stepId?: string;
  stepIndex?: number;
  attempt?: number;
  agent?: string;
  machine?: string;
  message?: string;
  data?: JsonObject;
  /** For `retrying`: when the next attempt may start. */
  retryInMs?: number;
  durationMs?: number;
  at: string;
}

export type LogStream = 'stdout' | 'stderr' | 'system';

/** One log line on `<prefix>.logs.<run>.<driver>.<step>`. */
export interface LogLine {
  runId: string;
  stepId: string;
  driver: string;
  attempt: number;
  /** Per step attempt, from 1: lets a reader see a gap in what one writer sent. */
  seq: number;
  ts: string;
  stream: LogStream;
  line: string;
}

/** Published on `<prefix>.logs.<run>.end` when the run reached its final state. */
export interface LogsEnd {
  runId: string;
  status: RunStatus;
  at: string;
}

/** What a driver that could not read a message records on `<prefix>.dlq.<driver>`. */
export interface DeadLetter {
  driver: string;
  subject: string;
  reason: string;
  agent: string;
  /** The original payload, base64: it may not be UTF-8 or JSON. */
  payload: string;
  headers: Record<string, string[]>;
  streamSeq?: number;
  at: string;
}
