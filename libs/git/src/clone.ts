import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { simpleGit, type SimpleGit } from 'simple-git';
import { type GitProtocol, GitInputError, allowedProtocolsFromEnv, checkRef, checkRepositoryUrl, maskCredentials } from './validation';

/** The part of a step's logger this lib writes to (a StepLogger from @conveyor/driver-sdk fits). */
export interface CloneLog {
  info(line: string): void;
  warn(line: string): void;
}

export interface CloneRequest {
  repository: string;
  /** Branch, tag or full commit id; the remote's HEAD when absent. */
  ref?: string;
  /** Where the working tree goes. Created when missing; the folder itself is kept (it may be a mount). */
  dir: string;
  log?: CloneLog;
  signal?: AbortSignal;
  /** Default: CONVEYOR_GIT_PROTOCOLS, else https, http, ssh, git, file. */
  allowedProtocols?: readonly GitProtocol[];
}

export interface CloneResult {
  /** The checked-out commit. */
  commit: string;
  /** The requested ref, or the remote's default branch when none was requested. */
  ref: string;
  /** True when `dir` already held this clone and nothing was fetched. */
  reused: boolean;
}

/** A clone that failed after its input was accepted: git's own message, credentials masked. */
export class GitCloneError extends Error {}

/** Written last, so a folder without it holds a partial clone. */
const MARKER = join('.git', 'conveyor-clone.json');

interface Marker {
  repository: string;
  ref: string | null;
  commit: string;
}

/**
 * Clones `repository` at `ref` into `dir`, shallow where the server allows it. The URL and ref
 * are checked before git runs. A folder that already holds the same clone is reused; anything
 * else in it (a partial clone from a killed attempt) is wiped first.
 */
export async function cloneRepository(req: CloneRequest): Promise<CloneResult> {
  const allowed = req.allowedProtocols ?? allowedProtocolsFromEnv();
  const repo = checkRepositoryUrl(req.repository, allowed);
  const ref = req.ref === undefined || req.ref === '' ? undefined : checkRef(req.ref);
  const log = req.log;
  const where = `${repo.display}${ref ? ` at ${ref.ref}` : ''}`;
  if (req.signal?.aborted) throw new GitCloneError(`clone of ${where} was cancelled before it started`);

  await mkdir(req.dir, { recursive: true });
  const existing = await readMarker(req.dir);
  if (existing && existing.repository === repo.urlWithoutCredentials && existing.ref === (ref?.ref ?? null)) {
    const local = gitIn(req.dir, allowed);
    const head = await local.revparse(['HEAD']).catch(() => '');
    const origin = await local.remote(['get-url', 'origin']).catch(() => '');
    if (head.trim() === existing.commit && (origin || '').trim() === repo.urlWithoutCredentials) {
      log?.info(`${req.dir} already holds ${where} at commit ${existing.commit}; not cloning again`);
      return { commit: existing.commit, ref: ref?.ref ?? (await currentBranch(req.dir, allowed)) ?? 'HEAD', reused: true };
    }
  }
  if ((await readdir(req.dir)).length > 0) {
    log?.warn(`${req.dir} holds an incomplete or different clone; wiping it`);
    await emptyDir(req.dir);
  }

  const git = gitIn(req.dir, allowed);
  const transfer: Transfer = { dir: req.dir, allowed, log, signal: req.signal };
  try {
    if (!ref || ref.kind === 'name') {
      log?.info(`cloning ${where} (shallow)`);
      await transferGit(transfer, ['clone', '--progress', '--depth', '1', '--no-tags', ...(ref ? ['--branch', ref.ref] : []), '--', repo.url, '.']);
    } else {
      await fetchCommit(git, transfer, repo.url, ref.ref, where);
    }
    // The token stays out of the workspace: the build can read .git/config.
    if (repo.urlWithoutCredentials !== repo.url) await git.remote(['set-url', 'origin', repo.urlWithoutCredentials]);
    const commit = (await git.revparse(['HEAD'])).trim();
    const resolvedRef = ref?.ref ?? (await currentBranch(req.dir, allowed)) ?? 'HEAD';
    const marker: Marker = { repository: repo.urlWithoutCredentials, ref: ref?.ref ?? null, commit };
    await writeFile(join(req.dir, MARKER), JSON.stringify(marker));
    log?.info(`checked out ${resolvedRef} at commit ${commit}`);
    return { commit, ref: resolvedRef, reused: false };
  } catch (err) {
    if (err instanceof GitInputError || err instanceof GitCloneError) throw err;
    if (req.signal?.aborted) throw new GitCloneError(`clone of ${where} was cancelled`);
    throw new GitCloneError(`cannot clone ${where}: ${maskCredentials(gitMessage(err))}`);
  }
}

/** A commit id: fetched alone with depth 1 when the server allows it, else the whole history and a checkout. */
async function fetchCommit(git: SimpleGit, transfer: Transfer, url: string, sha: string, where: string): Promise<void> {
  transfer.log?.info(`fetching ${where} (shallow)`);
  await git.init();
  await git.addRemote('origin', url);
  try {
    await transferGit(transfer, ['fetch', '--progress', '--depth', '1', '--no-tags', 'origin', sha]);
    await git.checkout(['--detach', 'FETCH_HEAD']);
    return;
  } catch (err) {
    if (transfer.signal?.aborted) throw err;
    transfer.log?.warn(`the server did not serve commit ${sha} alone (${maskCredentials(gitMessage(err))}); fetching the whole history`);
  }
  await transferGit(transfer, ['fetch', '--progress', '--no-tags', 'origin', '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*']);
  try {
    await git.checkout(['--detach', sha]);
  } catch {
    throw new GitCloneError(`cannot clone ${where}: commit ${sha} is not in the repository`);
  }
}

interface Transfer {
  dir: string;
  allowed: readonly GitProtocol[];
  log?: CloneLog;
  signal?: AbortSignal;
}

/** How long git gets to exit after TERM before its process group is killed. */
const KILL_GRACE_MS = 2_000;

/**
 * Runs a git command that talks to a remote (clone, fetch). Spawned directly rather than through
 * simple-git because git runs its transport in child processes (git-remote-http, ssh) that
 * outlive a killed git: only a process group of its own lets an abort kill all of them.
 * Arguments are fixed by this file, and user input in them has passed checkRepositoryUrl/checkRef.
 */
function transferGit(t: Transfer, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-c', 'protocol.ext.allow=never', ...args], {
      cwd: t.dir,
      env: gitEnv(t.allowed),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const problems: string[] = [];
    const progress = progressLogger(t.log);
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      // git redraws progress with "\r"; every other message ends with "\n".
      const parts = (pending + text).split(/[\r\n]/);
      pending = parts.pop() ?? '';
      for (const line of parts) {
        if (!line.trim()) continue;
        if (/^(fatal|error):/.test(line)) problems.push(line.trim());
        progress(maskCredentials(line.trim()));
      }
    });
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // The group is gone already.
      }
    };
    const onAbort = () => {
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
    };
    t.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => problems.push(err.message));
    child.on('close', (code, sig) => {
      t.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // A helper that git left behind would hold on to the remote: end the whole group.
      signalGroup('SIGKILL');
      if (pending.trim() && /^(fatal|error):/.test(pending.trim())) problems.push(pending.trim());
      if (code === 0) return resolve();
      if (t.signal?.aborted) return reject(new Error('cancelled'));
      reject(new Error(problems.join('\n') || `git ${args[0]} ended with ${sig ? `signal ${sig}` : `exit code ${code}`}`));
    });
    if (t.signal?.aborted) onAbort();
  });
}

function gitEnv(allowed: readonly GitProtocol[]): Record<string, string> {
  return {
    ...pick(process.env, ['PATH', 'HOME', 'SSH_AUTH_SOCK', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']),
    // One language for the messages users see.
    LC_ALL: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ALLOW_PROTOCOL: allowed.join(':'),
  };
}

/**
 * simple-git for the local commands (init, remote, rev-parse, checkout), its unsafe options left
 * off. Its environment guard rejects git variables it was not told about; the two named here
 * are ours. GIT_ALLOW_PROTOCOL is a whitelist that overrides every protocol.<name>.allow setting,
 * so ext:: and fd:: can never run, not even from a redirect or a submodule.
 */
function gitIn(dir: string, allowed: readonly GitProtocol[]): SimpleGit {
  return simpleGit({
    baseDir: dir,
    maxConcurrentProcesses: 1,
    allowEnvironment: ['GIT_TERMINAL_PROMPT', 'GIT_ALLOW_PROTOCOL'],
  }).env(gitEnv(allowed));
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) if (env[key] !== undefined) out[key] = env[key] as string;
  return out;
}

/**
 * Passes git's stderr lines to the log; progress lines ("Receiving objects:  45% (9/20)") only
 * once per stage and 25 % step, because git redraws them many times a second.
 */
function progressLogger(log: CloneLog | undefined): (line: string) => void {
  let lastKey = '';
  return (line) => {
    if (!log) return;
    const progress = /^(.*?):\s+(\d+)% /.exec(line + ' ');
    if (progress) {
      const pct = Number(progress[2]);
      const key = `${progress[1]}:${pct >= 100 ? 100 : Math.floor(pct / 25) * 25}`;
      if (key === lastKey) return;
      lastKey = key;
    }
    if (/^(fatal|error|warning):/.test(line)) log.warn(`git: ${line}`);
    else log.info(`git: ${line}`);
  };
}

async function readMarker(dir: string): Promise<Marker | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as Partial<Marker>;
    if (typeof parsed.repository === 'string' && typeof parsed.commit === 'string') {
      return { repository: parsed.repository, ref: typeof parsed.ref === 'string' ? parsed.ref : null, commit: parsed.commit };
    }
  } catch {
    // No marker or an unreadable one: not a complete clone.
  }
  return undefined;
}

async function currentBranch(dir: string, allowed: readonly GitProtocol[]): Promise<string | undefined> {
  const name = (await gitIn(dir, allowed).revparse(['--abbrev-ref', 'HEAD']).catch(() => '')).trim();
  return name && name !== 'HEAD' ? name : undefined;
}

/** Empties the folder but keeps it: it may be the root of a bind mount into the build container. */
async function emptyDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true, maxRetries: 3 });
}

/** git's complaint on one line: its fatal/error lines when it has any, without "Cloning into" chatter. */
function gitMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('Cloning into'));
  const serious = lines.filter((l) => /^(fatal|error):/.test(l));
  return (serious.length ? serious : lines).join('; ') || 'git failed without a message';
}
