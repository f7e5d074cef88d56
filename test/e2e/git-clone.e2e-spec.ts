import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitCloneError, GitInputError, cloneRepository, type CloneLog } from '@conveyor/git';
import { GitHttpServer, git, makeTestRepository, type TestRepository } from '../support/git-repo';

/** Collects every line a clone logs, to check content and masking. */
function recordingLog(): CloneLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (l) => lines.push(`info ${l}`), warn: (l) => lines.push(`warn ${l}`) };
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cloneRepository (real git)', () => {
  let repo: TestRepository;
  let work: string;
  let n = 0;
  const freshDir = () => join(work, `clone-${++n}`);
  const versionIn = (dir: string) => readFileSync(join(dir, 'version.txt'), 'utf8').trim();

  beforeAll(() => {
    repo = makeTestRepository();
    work = mkdtempSync(join(tmpdir(), 'conveyor-clones-'));
  });
  afterAll(() => {
    repo.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it("clones the remote's HEAD shallowly when no ref is given", async () => {
    const dir = freshDir();
    const log = recordingLog();
    const result = await cloneRepository({ repository: repo.url, dir, log });
    expect(result).toEqual({ commit: repo.main, ref: 'main', reused: false });
    expect(versionIn(dir)).toBe('main-3');
    expect(git(dir, 'rev-parse', '--is-shallow-repository')).toBe('true');
    expect(log.lines.some((l) => l.includes('cloning') && l.includes(repo.url))).toBe(true);
    // git's own progress reaches the log.
    expect(log.lines.some((l) => l.startsWith('info git: Receiving objects'))).toBe(true);
  });

  it('clones a branch and an annotated tag', async () => {
    const branchDir = freshDir();
    expect(await cloneRepository({ repository: repo.url, ref: 'feature', dir: branchDir })).toEqual({ commit: repo.feature, ref: 'feature', reused: false });
    expect(versionIn(branchDir)).toBe('feature-1');
    const tagDir = freshDir();
    expect(await cloneRepository({ repository: repo.url, ref: 'v1', dir: tagDir })).toEqual({ commit: repo.v1, ref: 'v1', reused: false });
    expect(versionIn(tagDir)).toBe('main-1');
  });

  it('fetches a commit that is no branch tip alone, with depth 1', async () => {
    const dir = freshDir();
    const log = recordingLog();
    const sha = repo.mainCommits[1];
    expect(await cloneRepository({ repository: repo.url, ref: sha, dir, log })).toEqual({ commit: sha, ref: sha, reused: false });
    expect(versionIn(dir)).toBe('main-2');
    expect(git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
    expect(log.lines.some((l) => l.includes('whole history'))).toBe(false);
  });

  it('falls back to the whole history when the server refuses a commit by id (protocol v0)', async () => {
    // A client on protocol v0 may only ask for advertised tips: the way older servers behave.
    const home = mkdtempSync(join(tmpdir(), 'conveyor-home-'));
    writeFileSync(join(home, '.gitconfig'), '[protocol]\n\tversion = 0\n');
    const savedHome = process.env.HOME;
    process.env.HOME = home;
    try {
      const dir = freshDir();
      const log = recordingLog();
      const sha = repo.mainCommits[1];
      expect(await cloneRepository({ repository: repo.url, ref: sha, dir, log })).toEqual({ commit: sha, ref: sha, reused: false });
      expect(versionIn(dir)).toBe('main-2');
      expect(log.lines.some((l) => l.startsWith('warn') && l.includes('whole history'))).toBe(true);
      await expect(cloneRepository({ repository: repo.url, ref: 'f'.repeat(40), dir: freshDir() })).rejects.toThrow(/commit f{40} is not in the repository/);
    } finally {
      process.env.HOME = savedHome;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('reuses a complete clone of the same repository and ref, and redoes anything else', async () => {
    const dir = freshDir();
    await cloneRepository({ repository: repo.url, ref: 'main', dir });
    const log = recordingLog();
    expect(await cloneRepository({ repository: repo.url, ref: 'main', dir, log })).toEqual({ commit: repo.main, ref: 'main', reused: true });
    expect(log.lines.some((l) => l.includes('not cloning again'))).toBe(true);

    // Same folder, another ref: wiped and cloned again.
    const other = recordingLog();
    expect(await cloneRepository({ repository: repo.url, ref: 'feature', dir, log: other })).toMatchObject({ commit: repo.feature, reused: false });
    expect(other.lines.some((l) => l.startsWith('warn') && l.includes('wiping'))).toBe(true);
    expect(versionIn(dir)).toBe('feature-1');
  });

  it('wipes a partial clone (no completion marker) and keeps the folder itself', async () => {
    const dir = freshDir();
    mkdirSync(join(dir, '.git', 'objects'), { recursive: true });
    writeFileSync(join(dir, 'half-written.txt'), 'x');
    const result = await cloneRepository({ repository: repo.url, dir });
    expect(result).toMatchObject({ commit: repo.main, reused: false });
    expect(existsSync(join(dir, 'half-written.txt'))).toBe(false);
    expect(versionIn(dir)).toBe('main-3');
  });

  it('fails clearly for a repository that does not exist', async () => {
    const missing = `file://${join(work, 'no-such-repo')}`;
    const attempt = cloneRepository({ repository: missing, dir: freshDir() });
    await expect(attempt).rejects.toThrow(GitCloneError);
    await expect(cloneRepository({ repository: missing, dir: freshDir() })).rejects.toThrow(/cannot clone file:\/\/.*no-such-repo: .*does not appear to be a git repository/);
  });

  it('fails clearly for a branch that does not exist', async () => {
    await expect(cloneRepository({ repository: repo.url, ref: 'no-such-branch', dir: freshDir() })).rejects.toThrow(/cannot clone .* at no-such-branch: .*not found/);
  });

  describe('refuses unsafe input before git runs', () => {
    const cases: [string, { repository: (marker: string) => string; ref?: (marker: string) => string }][] = [
      ['an ext:: transport', { repository: (m) => `ext::sh -c touch% ${m}` }],
      ['an ext:: transport without spaces', { repository: (m) => `ext::touch%20${m}` }],
      ['an --upload-pack option as the URL', { repository: (m) => `--upload-pack=touch ${m}` }],
      ['an option as the ssh host', { repository: (m) => `ssh://-oProxyCommand=touch%20${m}/repo` }],
      ['a ref that is an option', { repository: () => repo.url, ref: (m) => `--upload-pack=touch ${m}` }],
      ['the ref -bad', { repository: () => repo.url, ref: () => '-bad' }],
    ];
    it.each(cases)('%s', async (_name, input) => {
      const marker = join(work, `pwned-${++n}`);
      const dir = freshDir();
      const attempt = cloneRepository({ repository: input.repository(marker), ref: input.ref?.(marker), dir });
      await expect(attempt).rejects.toThrow(GitInputError);
      await expect(attempt).rejects.toThrow(/refused/);
      expect(existsSync(marker)).toBe(false);
      // Refused before anything happened: not even the folder was made.
      expect(existsSync(dir)).toBe(false);
    });

    it('a protocol outside the allow-list', async () => {
      const dir = freshDir();
      await expect(cloneRepository({ repository: repo.url, dir, allowedProtocols: ['https', 'ssh'] })).rejects.toThrow(/protocol "file" is not allowed here/);
      expect(existsSync(dir)).toBe(false);
    });
  });

  describe('over smart HTTP on 127.0.0.1', () => {
    let server: GitHttpServer;
    beforeAll(async () => {
      server = await GitHttpServer.start(join(repo.dir, '..'));
    });
    afterAll(() => server.close());

    it('never shows or leaves behind the credentials of a URL', async () => {
      const dir = freshDir();
      const log = recordingLog();
      const url = server.url('origin', 'ci-user:s3cret-token');
      const result = await cloneRepository({ repository: url, ref: 'main', dir, log });
      expect(result).toMatchObject({ commit: repo.main, reused: false });
      expect(log.lines.length).toBeGreaterThan(0);
      expect(log.lines.join('\n')).not.toContain('s3cret');
      expect(log.lines.join('\n')).toContain('http://***@127.0.0.1');
      // The build can read .git/config: the token is not in it.
      expect(readFileSync(join(dir, '.git', 'config'), 'utf8')).not.toContain('s3cret');
      expect(git(dir, 'remote', 'get-url', 'origin')).toBe(server.url('origin'));
      // The same URL again is recognised as the same clone.
      expect(await cloneRepository({ repository: url, ref: 'main', dir })).toMatchObject({ reused: true });

      let message = '';
      try {
        await cloneRepository({ repository: server.url('missing-repo', 'ci-user:s3cret-token'), dir: freshDir(), log });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^cannot clone http:\/\/\*\*\*@127\.0\.0\.1:\d+\/missing-repo: /);
      expect(message).not.toContain('s3cret');
      expect(log.lines.join('\n')).not.toContain('s3cret');
    });
  });

  describe('cancellation', () => {
    it('refuses to start when the signal has already fired', async () => {
      const dir = freshDir();
      await expect(cloneRepository({ repository: repo.url, dir, signal: AbortSignal.abort() })).rejects.toThrow(/cancelled before it started/);
      expect(existsSync(dir)).toBe(false);
    });

    it('kills git when the signal fires mid-clone', async () => {
      const controller = new AbortController();
      // This server takes the request and never answers: git waits until it is killed.
      const server = await GitHttpServer.start(work, { hang: true, onRequest: () => controller.abort() });
      try {
        const dir = freshDir();
        await expect(cloneRepository({ repository: server.url('origin'), dir, signal: controller.signal })).rejects.toThrow(/was cancelled/);
        expect(server.requests.length).toBe(1);
        // git's connection closes because git is gone.
        await waitUntil(() => server.openSockets.size === 0, 'the killed git closed its connection');
        expect(readdirSync(dir).includes('version.txt')).toBe(false);
        // The next attempt wipes the partial clone and succeeds.
        expect(await cloneRepository({ repository: repo.url, dir })).toMatchObject({ commit: repo.main, reused: false });
      } finally {
        await server.close();
      }
    });
  });
});
