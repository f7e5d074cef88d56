import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** git with a fixed identity and no user or system config, so tests behave the same everywhere. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Conveyor Test',
      GIT_AUTHOR_EMAIL: 'test@conveyor.invalid',
      GIT_COMMITTER_NAME: 'Conveyor Test',
      GIT_COMMITTER_EMAIL: 'test@conveyor.invalid',
      LC_ALL: 'C',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

export interface TestRepository {
  /** The working repository, served as `url`. */
  dir: string;
  url: string;
  /** Commits on main, oldest first; `main` is the last. */
  mainCommits: string[];
  main: string;
  /** The commit the annotated tag v1 points at (the first commit of main). */
  v1: string;
  /** Branch `feature`, one commit ahead of main's first commit. */
  feature: string;
  dispose(): void;
}

/**
 * A real repository in a temp dir, served over file://: three commits on `main` (the default
 * branch), an annotated tag `v1` on the first, and a branch `feature` forked from the first.
 * Each commit changes `version.txt`, so a checkout shows which one it is.
 */
export function makeTestRepository(options: { extraFiles?: number } = {}): TestRepository {
  const root = mkdtempSync(join(tmpdir(), 'conveyor-git-'));
  const dir = join(root, 'origin');
  git(root, 'init', '-q', '-b', 'main', dir);
  const commit = (message: string, content: string): string => {
    writeFileSync(join(dir, 'version.txt'), content);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', message);
    return git(dir, 'rev-parse', 'HEAD');
  };
  const first = commit('first', 'main-1\n');
  git(dir, 'tag', '-a', 'v1', '-m', 'version 1');
  git(dir, 'checkout', '-q', '-b', 'feature');
  const feature = commit('feature work', 'feature-1\n');
  git(dir, 'checkout', '-q', 'main');
  const second = commit('second', 'main-2\n');
  for (let i = 0; i < (options.extraFiles ?? 0); i++) {
    // Incompressible content so that a clone has real work to do.
    writeFileSync(join(dir, `blob-${i}.bin`), execFileSync('head', ['-c', '1048576', '/dev/urandom']));
  }
  const third = commit('third', 'main-3\n');
  return {
    dir,
    url: `file://${dir}`,
    mainCommits: [first, second, third],
    main: third,
    v1: first,
    feature,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * Smart HTTP for a test repository on 127.0.0.1: `git http-backend` run as a CGI per request.
 * `hang: true` accepts requests and never answers, for tests that cancel a clone mid-way.
 * Every request is recorded (with its Authorization header) so tests can see what git sent.
 */
export class GitHttpServer {
  readonly requests: { method: string; url: string; authorization?: string }[] = [];
  /** Sockets whose client (git) has not hung up yet. */
  readonly openSockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(projectRoot: string, options: { hang?: boolean; onRequest?: () => void } = {}): Promise<GitHttpServer> {
    let self: GitHttpServer | undefined;
    const server = createServer((req, res) => {
      self?.requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
      options.onRequest?.();
      if (options.hang) return;
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const cgi = spawn('git', ['http-backend'], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          GIT_PROJECT_ROOT: projectRoot,
          GIT_HTTP_EXPORT_ALL: '1',
          GIT_CONFIG_NOSYSTEM: '1',
          HOME: projectRoot,
          REQUEST_METHOD: req.method ?? 'GET',
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.replace(/^\?/, ''),
          CONTENT_TYPE: req.headers['content-type'] ?? '',
          HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
          GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
          REMOTE_ADDR: '127.0.0.1',
        },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      req.pipe(cgi.stdin);
      let head = Buffer.alloc(0);
      let headersDone = false;
      cgi.stdout.on('data', (chunk: Buffer) => {
        if (headersDone) return void res.write(chunk);
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        headersDone = true;
        let status = 200;
        for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim();
          const value = line.slice(colon + 1).trim();
          if (name.toLowerCase() === 'status') status = parseInt(value, 10);
          else res.setHeader(name, value);
        }
        res.statusCode = status;
        res.write(head.subarray(end + 4));
      });
      cgi.on('close', () => res.end());
    });
    server.on('connection', (socket) => {
      self?.openSockets.add(socket);
      socket.on('close', () => self?.openSockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new GitHttpServer(server, (server.address() as { port: number }).port);
    return self;
  }

  /** The URL of a repository under the project root, optionally with credentials in it. */
  url(repoPath: string, credentials?: string): string {
    return `http://${credentials ? `${credentials}@` : ''}127.0.0.1:${this.port}/${repoPath.replace(/^\//, '')}`;
  }

  async close(): Promise<void> {
    for (const socket of this.openSockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
