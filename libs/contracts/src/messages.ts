import type { CommitStatusTarget, JsonObject, NotifyTarget, PipelineSnapshot, RunStatus, TriggerOrigin } from './models';

export const MESSAGE_VERSION = 1;

/** The resource as a step sees it: the exact version the run was started for. */
export interface StepResource {
  type: string;
  name: string;
  version: number;
  spec: JsonObject;
  metadata: JsonObject;
  /** The forge event that made this version, when a webhook did. */
  trigger?: TriggerOrigin;
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
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  pipeline: PipelineSnapshot;
  resource: StepResource;
  /**
   * Index into `pipeline.steps` of the step to run.
   * @minimum 0
   */
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
  /** @format date-time */
  createdAt: string;
  /** How the step before this one ended: this message is that step's hand-off (absent on a run's first step). */
  from?: StepEnded;
  /** Steps that will never run, decided by the same hand-off (after a failure or a cancel). */
  skipped?: number[];
  /**
   * The W3C `traceparent` of the span that started the run (when tracing is on): every step's
   * span is its child, whichever agent runs it. Handed on with the message, like `pipeline`.
   */
  traceparent?: string;
}

/** How one step of a run ended, as recorded by the record that moved the run on. */
export interface StepEnded {
  stepIndex: number;
  stepId: string;
  /** The step's driver (so a reader of the run's end knows it without the pipeline). */
  driver?: string;
  attempt: number;
  status: 'succeeded' | 'failed' | 'cancelled' | 'skipped';
  message?: string;
  data?: JsonObject;
  /** Absent when no agent ran it (skipped, or given up by the gateway). */
  agent?: string;
  machine?: string;
  durationMs?: number;
  /** The build machine the run was pinned to when it ended (a step that ran on it, or pinned it). */
  pin?: string;
  /** It removed what pinned the run to its machine (container-stop): the steps after it are not pinned by what came before. */
  released?: true;
  /** Carried over from an earlier run, not run again (see PipelineStep.reused). */
  reusedFrom?: string;
  /** @format date-time */
  at: string;
}

/**
 * `<prefix>.steps.<run>.<step>.claim|retry|release`: an attempt of a step starts (taken over
 * from an agent that stopped answering, or started again), fails with a retry to come, or is
 * given back; `<prefix>.events.<run>.<step>.started`: a first delivery's attempt started.
 */
export interface StepRecord {
  v: typeof MESSAGE_VERSION;
  kind: 'claim' | 'retry' | 'release' | 'started';
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  /** @minimum 0 */
  stepIndex: number;
  stepId: string;
  /**
   * The attempt this record is about; a released attempt is started again under the same number.
   * @minimum 1
   */
  attempt: number;
  agent: string;
  machine: string;
  message?: string;
  /** For `retry`: the pause before the next attempt. */
  retryInMs?: number;
  durationMs?: number;
  /** @format date-time */
  at: string;
}

/**
 * A stop order, the value of a run's key in the cancels bucket: why the run's steps must stop.
 * A user's cancel (any value, e.g. `{at}`, reads as one), a gateway giving up on the run
 * (`failed`, with the reason), or a graph whose step failed while its pipeline fails fast
 * (`cancelled` with `failFast`: its running steps are cancelled, the run itself was not).
 */
export interface StopOrder {
  status: 'cancelled' | 'failed';
  message: string;
  failFast?: true;
}

/** A user's cancel as the gateway stores it in the cancels bucket (`POST /runs/:id/cancel`): read as a StopOrder `cancelled`. */
export interface CancelRequest {
  /** @format date-time */
  at: string;
}

/** The value of a run's key in the cancels bucket (`$KV.<prefix>-cancels.<run>`). */
export type CancelsEntry = StopOrder | CancelRequest;

/**
 * `<prefix>.control.<run>.cancel`, core NATS (not stored): the gateway tells the agents running
 * a step of the run to abort it now. Only a hint that arrives sooner than the cancels bucket's
 * watch: an agent acts on the bucket's entry whatever this says.
 */
export interface CancelSignal {
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  /** @format date-time */
  at: string;
}

/**
 * `<prefix>.steps.<run>.<step>.done`: how one step of a graph pipeline ended (a pipeline
 * whose steps are a straight line records that in the next step's work, `from`). Fenced on
 * the step's own records; what follows from it (the work it readies, the steps it skips, the
 * run's end) is written next, each record fenced on its own step (see RunLog.settle).
 */
export interface StepDone {
  v: typeof MESSAGE_VERSION;
  kind: 'done';
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  from: StepEnded;
  /** The build machine the run was pinned to when this step ended; steps after it run there. */
  pin?: string;
  /** The step ended because a user cancelled the run (the run ends `cancelled`). */
  cancelled?: true;
  /** @format date-time */
  at: string;
}

/** `<prefix>.steps.<run>.end`: the run's final state, and how its last step ended. */
export interface RunEnd {
  v: typeof MESSAGE_VERSION;
  kind: 'end';
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  status: Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'>;
  message?: string;
  from?: StepEnded;
  skipped?: number[];
  /** @format date-time */
  at: string;
}

export type StepEventKind = 'started' | 'waiting' | 'succeeded' | 'failed' | 'retrying' | 'released' | 'skipped' | 'cancelled';
export type RunEventKind = 'succeeded' | 'failed' | 'cancelled';

/**
 * One fact about a run, as the run record folds it (libs/runs `applyEvent`); the records of
 * a run's log (`recordEvents`) each say one or more of them.
 */
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
  pin?: string;
  reusedFrom?: string;
  at: string;
  /** Stream sequence of the record that said it: of two facts of one attempt and phase, the later wins. */
  seq?: number;
}

export type LogStream = 'stdout' | 'stderr' | 'system';

/** One log line on `<prefix>.logs.<run>.<driver>.<step>`. */
export interface LogLine {
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  stepId: string;
  driver: string;
  attempt: number;
  /**
   * Per step attempt, from 1: lets a reader see a gap in what one writer sent.
   * @minimum 1
   */
  seq: number;
  /** @format date-time */
  ts: string;
  stream: LogStream;
  line: string;
}

/** Published on `<prefix>.logs.<run>.end` when the run reached its final state. */
export interface LogsEnd {
  /** @pattern ^[0-9a-z]{26}$ */
  runId: string;
  status: RunStatus;
  /** @format date-time */
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
  /** @format date-time */
  at: string;
}

/**
 * A report to send for a run (`<prefix>.reports.<run>.<kind>.<which>`): a commit status at the
 * run's start or end, or a notification at its end. Self-contained but for secret values (the
 * API token, the signing secret), which the sender reads when it sends: none is ever on NATS.
 */
export interface ReportJob {
  v: 1;
  /** `<run>.status.start`, `<run>.status.end`, `<run>.notify.<n>`: also the message id. */
  id: string;
  runId: string;
  kind: 'status' | 'notification';
  createdAt: string;
  /** A commit status: where to, for which commit, and what to say. */
  status?: {
    target: CommitStatusTarget & { forge: 'github' | 'gitea' | 'gitlab'; project: string; context: string };
    commit: string;
    ref: string;
    /** The forge's own word: GitHub and Gitea `pending|success|failure|error`, GitLab `running|success|failed|canceled`. */
    state: string;
    description: string;
    /** The run's page. */
    url: string;
  };
  /** A notification: the pipeline's target and the JSON summary to post. */
  notification?: { target: NotifyTarget; event: 'succeeded' | 'failed' | 'cancelled'; summary: JsonObject };
}
