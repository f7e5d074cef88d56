/**
 * Checks on a repository URL and a ref that run BEFORE git does: a URL or ref from a
 * resource spec is user input, and git treats some inputs as commands (`ext::sh -c ...`,
 * `--upload-pack=...`, `ssh://-oProxyCommand=...`).
 */

export const GIT_PROTOCOLS = ['https', 'http', 'ssh', 'git', 'file'] as const;
export type GitProtocol = (typeof GIT_PROTOCOLS)[number];

/** A URL or ref that was refused before git ran. */
export class GitInputError extends Error {}

export interface CheckedRepository {
  /** The URL as given: the one git clones from. */
  url: string;
  protocol: GitProtocol;
  /** The URL with any user:password part removed: stored in the clone's config and compared on reuse. */
  urlWithoutCredentials: string;
  /** The URL with credentials masked, for log lines and errors. */
  display: string;
}

export interface CheckedRef {
  ref: string;
  /** `commit` for a full 40- or 64-hex object id, `name` for a branch or tag. */
  kind: 'commit' | 'name';
}

const MAX_URL_LENGTH = 4096;
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;
const SCHEME_URL = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s;
// git's scp-like syntax: [user@]host:path, recognised when no "/" comes before the first ":".
const SCP_LIKE = /^(?:([^@/:]+)@)?([^@/:[\]]+|\[[^\]]+\]):(.*)$/s;

/** Replaces the user-info part of every URL in `text` with `***`. */
export function maskCredentials(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/'"]+@/g, '$1***@');
}

/** The allowed protocols from CONVEYOR_GIT_PROTOCOLS (comma separated), default all of GIT_PROTOCOLS. */
export function allowedProtocolsFromEnv(env: Record<string, string | undefined> = process.env): GitProtocol[] {
  const raw = env.CONVEYOR_GIT_PROTOCOLS?.trim();
  if (!raw) return [...GIT_PROTOCOLS];
  const list = raw.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean);
  for (const p of list) {
    if (!(GIT_PROTOCOLS as readonly string[]).includes(p)) {
      throw new Error(`CONVEYOR_GIT_PROTOCOLS=${raw}: "${p}" is not one of ${GIT_PROTOCOLS.join(', ')}`);
    }
  }
  return list as GitProtocol[];
}

export function checkRepositoryUrl(input: unknown, allowed: readonly GitProtocol[] = GIT_PROTOCOLS): CheckedRepository {
  if (typeof input !== 'string' || input.length === 0) throw new GitInputError('repository URL is missing');
  const display = maskCredentials(input);
  const refuse = (why: string): never => {
    throw new GitInputError(`repository URL ${JSON.stringify(display)} is refused: ${why}`);
  };
  if (input.length > MAX_URL_LENGTH) refuse(`longer than ${MAX_URL_LENGTH} characters`);
  if (CONTROL_OR_SPACE.test(input)) refuse('it contains spaces or control characters');
  if (input.startsWith('-')) refuse('it starts with "-" (git would read it as an option)');
  // "<transport>::<address>" runs a remote helper; ext:: runs any command.
  if (/^[A-Za-z0-9+.-]+::/.test(input)) refuse('remote-helper URLs ("transport::address", e.g. ext::) are not allowed');

  let protocol: GitProtocol;
  let urlWithoutCredentials = input;
  const scheme = SCHEME_URL.exec(input);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    const normalized = name === 'git+ssh' || name === 'ssh+git' ? 'ssh' : name;
    if (!(GIT_PROTOCOLS as readonly string[]).includes(normalized)) refuse(`protocol "${name}" is not supported (use ${GIT_PROTOCOLS.join(', ')})`);
    protocol = normalized as GitProtocol;
    let parsed: URL;
    try {
      parsed = new URL(input);
    } catch {
      return refuse('it is not a valid URL');
    }
    if (protocol === 'file') {
      if (parsed.hostname && parsed.hostname !== 'localhost') refuse('a file:// URL names a path on this machine (file:///path)');
      if (!parsed.pathname || parsed.pathname === '/') refuse('the file:// URL has no path');
    } else {
      const host = hostOf(scheme[2]);
      if (!host) refuse('it has no host');
      if (host.startsWith('-')) refuse('the host starts with "-"');
      if (parsed.username.startsWith('-')) refuse('the user name starts with "-"');
      if (parsed.pathname.length <= 1) refuse('it names no repository path');
    }
    if (parsed.username || parsed.password) {
      // ssh needs its user name (ssh://git@host/...); a password or an https token is a secret.
      parsed.password = '';
      if (protocol !== 'ssh') parsed.username = '';
      urlWithoutCredentials = parsed.href;
    }
  } else {
    const scp = SCP_LIKE.exec(input);
    if (!scp) return refuse('use a URL such as https://host/repo.git, ssh://host/repo.git, git@host:repo.git or file:///path/to/repo');
    const [, user, host, path] = scp;
    if (host.length === 1 && /[A-Za-z]/.test(host)) refuse('a drive-letter path is not a repository URL');
    if (user?.startsWith('-')) refuse('the user name starts with "-"');
    if (host.startsWith('-')) refuse('the host starts with "-"');
    if (!path || path.startsWith('-')) refuse('the repository path is missing or starts with "-"');
    protocol = 'ssh';
  }
  if (!allowed.includes(protocol)) refuse(`protocol "${protocol}" is not allowed here (allowed: ${allowed.join(', ') || 'none'}; see CONVEYOR_GIT_PROTOCOLS)`);
  return { url: input, protocol, urlWithoutCredentials, display };
}

function firstSlash(rest: string): number {
  const i = rest.indexOf('/');
  return i < 0 ? rest.length : i;
}

/** The host part of the text after "scheme://": after the last "@" of the authority, without the port. */
function hostOf(rest: string): string {
  const authority = rest.slice(0, firstSlash(rest));
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  return hostPort.replace(/:\d*$/, '');
}

/** A branch, tag or full commit id, by git's check-ref-format rules. */
export function checkRef(input: unknown): CheckedRef {
  if (typeof input !== 'string' || input.length === 0) throw new GitInputError('ref is empty');
  const shown = JSON.stringify(input.length > 100 ? `${input.slice(0, 100)}...` : input);
  const refuse = (why: string): never => {
    throw new GitInputError(`ref ${shown} is refused: ${why}`);
  };
  if (/^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(input)) return { ref: input.toLowerCase(), kind: 'commit' };
  if (input.length > 255) refuse('longer than 255 characters');
  if (input.startsWith('-')) refuse('it starts with "-" (git would read it as an option)');
  if (CONTROL_OR_SPACE.test(input)) refuse('it contains spaces or control characters');
  if (/[~^:?*[\\]/.test(input)) refuse('it contains one of ~ ^ : ? * [ \\');
  if (input.includes('..')) refuse('it contains ".."');
  if (input.includes('@{') || input === '@') refuse('it contains "@{" or is "@"');
  if (input.startsWith('/') || input.endsWith('/') || input.includes('//')) refuse('it has an empty path component');
  if (input.endsWith('.')) refuse('it ends with "."');
  for (const part of input.split('/')) {
    if (part.startsWith('.')) refuse('a component starts with "."');
    if (part.endsWith('.lock')) refuse('a component ends with ".lock"');
  }
  return { ref: input, kind: 'name' };
}
