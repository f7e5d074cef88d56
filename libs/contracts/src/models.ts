/** The stored shapes. JSON over HTTP and over NATS uses exactly these field names. */

export type JsonObject = { [key: string]: unknown };

export interface ResourceDefinition {
  name: string;
  description: string;
  /** Free-form version label chosen by the author (Conveyor CI's field); not the storage revision. */
  version: string;
  /** JSON Schema that every resource's `spec` must satisfy. */
  schema: JsonObject;
  createdAt: string;
  updatedAt: string;
}

export interface PipelineStep {
  id: string;
  name: string;
  driver: string;
  /** Seconds one attempt may take before it is aborted. */
  timeout?: number;
  /** Extra attempts after the first one fails. */
  retries?: number;
  /** A cleanup step: runs even when an earlier step failed or the run was cancelled. */
  always?: boolean;
  /** Ids of the steps it waits for; absent: the step before it; `[]`: none (starts at once). */
  needs?: string[];
  /** Free JSON handed to the driver. */
  config?: JsonObject;
  /** Runs the step once per combination of these values (see libs/runs matrix.ts): `{axis: [values…], include?, exclude?}`. */
  matrix?: MatrixSpec;
  /** Of a matrix step's expansions, at most this many run at once. */
  maxParallel?: number;
  /** Set on a matrix step's expansions (in a run's pipeline): the id of the step they expand. */
  matrixOf?: string;
  /** When the step runs: on the outcome so far, and on a CEL expression over the run's inputs; skipped (with the reason) otherwise. */
  when?: StepWhen;
  /**
   * The step is a person's decision, not a driver's: it waits (`waiting`) until someone with the
   * write role approves it (it succeeds) or rejects it (it fails), or its `timeout` (seconds,
   * default CONVEYOR_APPROVAL_TIMEOUT) passes; its `driver` is not used.
   */
  approval?: boolean;
  /** In a re-run's pipeline: the step is not run again but carried over from that run, with its outcome (POST /runs/:id/rerun). */
  reused?: { from: string; message?: string; data?: JsonObject };
}

export interface StepWhen {
  /** `success` (the default): its needs all succeeded; `failure`: a step of the run failed; `always`: whatever happened. */
  status?: Array<'success' | 'failure' | 'always'>;
  /** A CEL expression that must be true, e.g. `ref == 'main'`, `ref.startsWith('release/')`, `version > 1`. */
  expr?: string;
}

export type MatrixValue = string | number | boolean;
/** An axis's values: plain values, or objects of them (named so its JSON Schema keeps its items). */
export type MatrixAxis = MatrixValue[] | Array<Record<string, MatrixValue>>;
export type MatrixSpec = { [axis: string]: MatrixAxis | undefined } & {
  include?: Array<Record<string, MatrixValue>>;
  exclude?: Array<Record<string, MatrixValue>>;
};

export interface Pipeline {
  name: string;
  description: string;
  /** Name of the resource definition whose resources this pipeline builds. */
  resource: string;
  steps: PipelineStep[];
  /** A step that fails for good stops the run's other running steps (default true). */
  failFast?: boolean;
  /** At most one run of a group runs at a time; later ones queue in order, or cancel the running one. */
  concurrency?: Concurrency;
  /** Where to post a summary of each run when it ends (see the gateway's reports). */
  notify?: NotifyTarget[];
  createdAt: string;
  updatedAt: string;
}

/** A pipeline's notification: a JSON run summary posted to `url` when a run ends in one of `on`. */
export interface NotifyTarget {
  url: string;
  on: Array<'succeeded' | 'failed' | 'cancelled'>;
  /** A stored secret's name: the body is signed with it as a generic webhook is (`X-Conveyor-Signature-256`). */
  secret?: string;
}

export interface Resource {
  name: string;
  /** Name of the resource definition (the resource's type). */
  resource: string;
  pipeline?: string;
  spec: JsonObject;
  metadata: JsonObject;
  /** 1 for the first version, +1 for every change. */
  version: number;
  /** The run this version started, when it names a pipeline. */
  runid?: string;
  /** The forge event that made this version (set by `POST /hooks/:trigger` only, never by a client). */
  trigger?: TriggerOrigin;
  createdAt: string;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'waiting' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];
export function isTerminalRunStatus(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}

export interface StepRun {
  id: string;
  name: string;
  driver: string;
  always: boolean;
  /** The steps it waits for (resolved: a step without `needs` waits for the one before it). */
  needs: string[];
  /** A matrix step's expansion: the step it expands, and its values. */
  matrixOf?: string;
  matrix?: JsonObject;
  /** The build machine the run was pinned to when the step ended (it ran there, or pinned it): its work depended on that machine's state. */
  pin?: string;
  /** Not run again: carried over, with its outcome, from this run (a re-run of what failed). */
  reusedFrom?: string;
  /** An approval step: when it began to wait for a person. */
  waitingSince?: string;
  status: StepStatus;
  /** Attempts started so far (a redelivery after a crash counts as an attempt). */
  attempts: number;
  agent?: string;
  machine?: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  message?: string;
  /** What the driver returned (e.g. the container id), readable by later steps. */
  data?: JsonObject;
  /** Stream sequence of the run-log record that set `status`. */
  seq?: number;
}

/** The pipeline as it was when the run started: later edits of the pipeline do not change a run. */
export interface PipelineSnapshot {
  name: string;
  resource: string;
  steps: PipelineStep[];
  failFast?: boolean;
  notify?: NotifyTarget[];
}

export interface Concurrency {
  /** A template over the run's resource: `${{ resource.name }}`, `${{ resource.type }}`, `${{ resource.spec.<key> }}`, `${{ pipeline }}`. */
  group: string;
  /** A new run cancels the one running (and those queued) instead of queueing behind it. */
  cancelInProgress?: boolean;
}

export interface ResourceRef {
  /** The resource definition's name. */
  type: string;
  name: string;
  version: number;
}

export interface Run {
  id: string;
  pipeline: PipelineSnapshot;
  resource: ResourceRef;
  status: RunStatus;
  message?: string;
  steps: StepRun[];
  /** Set by `POST /runs/:id/cancel`; drivers check it before starting a step. */
  cancelRequested: boolean;
  /** The concurrency group the run belongs to (its pipeline's `concurrency.group`, filled in). */
  group?: string;
  /** The run this one re-runs (POST /runs/:id/rerun), and the runs that re-ran this one. */
  rerunOf?: string;
  reruns?: string[];
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  /** The forge event whose resource version this run builds (a webhook's run). */
  trigger?: TriggerOrigin;
  /** Commit statuses and notifications posted for this run, and those given up on (see the gateway's reports). */
  reports?: RunReport[];
  /** The run's end, folded before the outcome of a step it still shows running (see libs/runs `applyEvent`). */
  ending?: { status: 'succeeded' | 'failed' | 'cancelled'; message?: string; at: string };
}

/** A driver agent, as it announces itself in the agents bucket (refreshed by heartbeats). */
export interface AgentInfo {
  id: string;
  /** Drivers this agent serves. */
  drivers: string[];
  /** Build machine: agents of one machine share its Docker engine and workspaces. */
  machine: string;
  host: string;
  pid: number;
  concurrency: number;
  running: Array<{
    runId: string;
    stepId: string;
    driver: string;
    /** @format date-time */
    since: string;
  }>;
  /** @format date-time */
  startedAt: string;
  /** @format date-time */
  lastHeartbeat: string;
  /** Stopping (SIGTERM/SIGINT): takes no new work, lets its running steps finish. */
  draining?: boolean;
}

/**
 * A resource built on a cron schedule: each tick makes a new version of resource
 * `resourceName` of type `resource` with `spec`, and starts a run of `pipeline` (see the
 * gateway's schedules).
 */
export interface Schedule {
  name: string;
  /** 5 fields (minute hour day month weekday), or 6 with seconds first. */
  cron: string;
  /** IANA zone the cron is read in; UTC when absent. */
  timezone?: string;
  resource: string;
  pipeline: string;
  /** The resource's name; the schedule's name by default. */
  resourceName: string;
  spec: JsonObject;
  createdAt: string;
  updatedAt: string;
  /** When the current cron and zone took effect: no tick is due before it. */
  since: string;
  /** The last tick whose run was started (or that failed to start one). */
  last?: ScheduleTickOutcome;
}

export interface ScheduleTickOutcome {
  /** The tick's due time (ISO). */
  at: string;
  /** `<schedule>:<at>` */
  tick: string;
  runid?: string;
  /** The resource version the tick made. */
  version?: number;
  /** Why the tick started no run (a pipeline deleted since, a spec its definition no longer takes). */
  error?: string;
}

/** A tick on the ticks stream (`<prefix>.ticks.<schedule>`): one per due time, stored by whichever gateway came first. */
export interface ScheduleTick {
  v: 1;
  schedule: string;
  /**
   * The due time (ISO).
   * @format date-time
   */
  at: string;
  tick: string;
  /** It stands in for due times missed while no gateway ran (only the most recent is run). */
  catchUp: boolean;
  /** The gateway that stored it (its agent id), for the record. */
  by: string;
}

export type TriggerSource = 'github' | 'gitea' | 'gitlab' | 'generic';
export type TriggerEvent = 'push' | 'tag' | 'pull_request';
export type Forge = 'github' | 'gitea' | 'gitlab';

/** Where a trigger's runs report their commit status: a forge's API, with a token kept as a stored secret. */
export interface CommitStatusTarget {
  /** The forge API's base URL: `https://api.github.com`, `https://gitea.example/api/v1`, `https://gitlab.example/api/v4`. */
  api: string;
  /** A stored secret's name: the API token. */
  token: string;
  /** Which API it is; the trigger's source when absent (required for a generic trigger). */
  forge?: Forge;
  /** `owner/name` (GitHub, Gitea) or the project's id or path (GitLab); read from the event when absent. */
  project?: string;
  /** The status's context (name) on the commit; `conveyor/<pipeline>` when absent. */
  context?: string;
}

/**
 * A stored webhook trigger: an event from a forge (or from a git server's post-receive hook)
 * that matches `events` and `branches` makes a new version of resource `resourceName` of type
 * `resource`, whose spec is `spec` merged with what the event gives, and starts a run of `pipeline`.
 */
export interface Trigger {
  name: string;
  source: TriggerSource;
  /** A stored secret's name: the webhook secret the forge signs with. */
  secret: string;
  /** Only events of this repository (its clone URL or `owner/name`) are taken, when set. */
  repository?: string;
  events: TriggerEvent[];
  /** Globs over branch names (and tag names for `tag` events); every branch when absent. */
  branches?: string[];
  resource: string;
  pipeline: string;
  /** A template for the resource's name (`${{ trigger }}`, `${{ branch }}`, `${{ event }}`, `${{ repository.name }}`); the trigger's name when absent. */
  resourceName: string;
  /** Merged under what the event gives (`repository`, `ref`, `commit`, `sender`, `message`). */
  spec: JsonObject;
  status?: CommitStatusTarget;
  createdAt: string;
  updatedAt: string;
  /** The last delivery that passed the signature check, and what came of it. */
  last?: HookDeliveryOutcome;
}

export interface HookDeliveryOutcome {
  at: string;
  delivery: string;
  event?: TriggerEvent;
  /** started: a run (or the run an earlier copy started); ignored: not an event or branch this trigger runs for; rejected: the version was refused. */
  outcome: 'started' | 'ignored' | 'rejected';
  runid?: string;
  resource?: string;
  version?: number;
  reason?: string;
}

/** What a trigger's event was, kept with the resource version it made (and read by the reports). */
export interface TriggerOrigin {
  trigger: string;
  source: TriggerSource;
  event: TriggerEvent;
  /** The forge's delivery id. */
  delivery: string;
  /** Clone URL. */
  repository: string;
  /** `refs/heads/<branch>`, `refs/tags/<tag>`, or the pull request's head ref. */
  ref: string;
  commit: string;
  /** `owner/name` (GitHub, Gitea) or the project's id (GitLab), as the forge's API names it. */
  project?: string;
  sender?: string;
  message?: string;
  /** The trigger's status target when the event came (a later edit of the trigger does not change it). */
  status?: CommitStatusTarget;
}

/**
 * A commit status or a notification of a run: posted, still being tried (`retrying`, with the
 * last error and the next try), or given up on (`failed`).
 */
export interface RunReport {
  /** The report job's id (`<run>.<kind>.<which>`): one entry per job, however often it was tried. */
  id?: string;
  kind: 'status' | 'notification';
  /** What was reported: the status state (`pending`, `success`, `failure`, `error`) or the run's outcome. */
  event: string;
  /** Where to (a URL without credentials). */
  target: string;
  outcome: 'delivered' | 'retrying' | 'failed';
  attempts: number;
  at: string;
  error?: string;
  /** When a `retrying` report is tried next. */
  next?: string;
}
