/**
 * The oldest nats-server Conveyor works with. Fenced run transitions need the wildcard
 * expected-last-subject-sequence check (Nats-Expected-Last-Subject-Sequence-Subject) and
 * per-message TTLs, both new in 2.11. deploy/local/setup.sh (CONVEYOR_NATS_MIN) installs
 * against the same minimum; keep the two equal.
 */
export const NATS_SERVER_MIN_VERSION = '2.11.0';

/** Thrown by connectJetStream when the server it reached is older than the minimum. */
export class NatsServerTooOldError extends Error {
  constructor(
    message: string,
    /** What the server reported (`INFO.version`), or undefined when it reported none. */
    readonly version: string | undefined,
    readonly minimum: string,
  ) {
    super(message);
    this.name = 'NatsServerTooOldError';
  }
}

interface Version {
  core: [number, number, number];
  /** A pre-release tag ("RC.1", "beta"); a pre-release comes before its release. */
  pre?: string;
}

/** "2.11.0", "v2.11.0", "2.12.0-RC.3", "2.11.4+binary" (a missing patch counts as 0). */
export function parseServerVersion(text: string | undefined): Version | undefined {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*$/.exec(text ?? '');
  if (!m) return undefined;
  return { core: [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)], pre: m[4] };
}

/** Negative, zero or positive as a comes before, equals or comes after b (semver order of the two that matter here). */
function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a.core[i] !== b.core[i]) return a.core[i] - b.core[i];
  if (a.pre === b.pre) return 0;
  if (a.pre === undefined) return 1;
  if (b.pre === undefined) return -1;
  return a.pre < b.pre ? -1 : 1;
}

/**
 * Why a server of `version` cannot be used, or undefined when it can. A version that cannot be
 * read is refused too: every nats-server since 1.0 reports one, so anything else is not one
 * Conveyor knows. `server` (an address) is named in the message when given.
 */
export function serverVersionProblem(version: string | undefined, server?: string, minimum: string = NATS_SERVER_MIN_VERSION): string | undefined {
  const min = parseServerVersion(minimum);
  if (!min) throw new Error(`not a version: ${minimum}`);
  const have = parseServerVersion(version);
  if (have && compare(have, min) >= 0) return undefined;
  const who = `nats-server ${version?.trim() || '(no version reported)'}${server ? ` at ${server}` : ''}`;
  const why = have ? 'is too old' : 'reports no version Conveyor can read';
  return `${who} ${why}: Conveyor needs ${minimum} or newer (fenced run transitions use the wildcard expected-sequence check and message TTLs); install the current one (deploy/local/setup.sh does)`;
}

/** Throws NatsServerTooOldError unless a server of `version` can be used. */
export function assertServerVersion(version: string | undefined, server?: string, minimum: string = NATS_SERVER_MIN_VERSION): void {
  const problem = serverVersionProblem(version, server, minimum);
  if (problem) throw new NatsServerTooOldError(problem, version, minimum);
}
