import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactError, collectArtifacts, formatBytes, readArtifactRule, type ArtifactLimits } from './artifact-files';
import { contentTypeOf, digestHex } from './artifact-store';

const LIMITS: ArtifactLimits = { maxFileBytes: 1024 * 1024, maxStepBytes: 2 * 1024 * 1024, maxFiles: 10 };

describe('readArtifactRule', () => {
  it('takes a list of globs, or {paths, when, optional, needs}', () => {
    expect(readArtifactRule(undefined)).toBeUndefined();
    expect(readArtifactRule(['dist/*', './out/app'])).toEqual({ paths: ['dist/*', 'out/app'], needs: [], when: 'success', optional: false });
    expect(readArtifactRule({ paths: ['a'], when: 'always', optional: true })).toEqual({ paths: ['a'], needs: [], when: 'always', optional: true });
    expect(readArtifactRule({ needs: ['dist/app'] })).toEqual({ paths: [], needs: ['dist/app'], when: 'success', optional: false });
  });

  it.each([
    ['dist/*', /must be a list of globs/],
    [{}, /must be a list of globs/],
    [[], /names no paths to keep and no artifacts to fetch/],
    [['../x'], /leaves the workspace/],
    [['a/../../x'], /leaves the workspace/],
    [['/etc/passwd'], /absolute path/],
    [['!x'], /negated globs/],
    [['a\u0001b'], /control characters/],
    [[''], /non-empty glob/],
    [{ paths: ['a'], when: 'sometimes' }, /"artifacts.when"/],
    [{ needs: ['../../etc/passwd'] }, /leaves the workspace/],
  ])('refuses %j', (raw, why) => {
    expect(() => readArtifactRule(raw)).toThrow(ArtifactError);
    expect(() => readArtifactRule(raw)).toThrow(why);
  });
});

describe('collectArtifacts', () => {
  let root: string;
  let outside: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'conveyor-art-'));
    outside = mkdtempSync(join(tmpdir(), 'conveyor-outside-'));
    mkdirSync(join(root, 'dist', 'sub'), { recursive: true });
    mkdirSync(join(root, '.git'));
    writeFileSync(join(root, 'dist', 'app'), 'binary');
    writeFileSync(join(root, 'dist', 'sub', 'notes.txt'), 'notes');
    writeFileSync(join(root, '.git', 'config'), 'x');
    writeFileSync(join(outside, 'secret'), 'do not take');
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  const rule = (paths: string[], optional = false) => ({ paths, needs: [], when: 'success' as const, optional });

  it('matches files by glob (dotfiles too, never .git), each once, in name order', async () => {
    const files = await collectArtifacts(root, rule(['dist/**', 'dist/app', '**/config'], true), LIMITS);
    expect(files.map((f) => [f.name, f.size])).toEqual([
      ['dist/app', 6],
      ['dist/sub/notes.txt', 5],
    ]);
  });

  it('follows a symlink only to a file inside the workspace', async () => {
    symlinkSync(join(root, 'dist', 'app'), join(root, 'dist', 'link-in'));
    expect((await collectArtifacts(root, rule(['dist/link-in']), LIMITS))[0]).toMatchObject({ name: 'dist/link-in', size: 6, followed: true });
    symlinkSync(join(outside, 'secret'), join(root, 'dist', 'link-out'));
    await expect(collectArtifacts(root, rule(['dist/*']), LIMITS)).rejects.toThrow('artifact "dist/link-out" is refused: it is a symlink to a path outside the workspace');
    // A symlinked directory is not walked into: its files are never seen, and the link itself is refused.
    symlinkSync(outside, join(root, 'escape'));
    await expect(collectArtifacts(root, rule(['escape/*']), LIMITS)).rejects.toThrow(/matched no file/);
    await expect(collectArtifacts(root, rule(['escape/**']), LIMITS)).rejects.toThrow('artifact "escape" is refused: it is a symlink to a path outside the workspace');
  });

  it('refuses a file over the limit by its size, without reading it (sparse), and a step over its total', async () => {
    truncateSync(join(root, 'dist', 'app'), 2 * 1024 ** 3);
    await expect(collectArtifacts(root, rule(['dist/app']), LIMITS)).rejects.toThrow('artifact "dist/app" is 2.0 GiB, over the limit of 1.0 MiB a file (CONVEYOR_ARTIFACT_MAX_BYTES)');
    truncateSync(join(root, 'dist', 'app'), 900 * 1024);
    truncateSync(join(root, 'dist', 'sub', 'notes.txt'), 900 * 1024);
    await expect(collectArtifacts(root, rule(['dist/**']), { ...LIMITS, maxStepBytes: 1024 * 1024 })).rejects.toThrow(/add up to more than 1.0 MiB/);
    await expect(collectArtifacts(root, rule(['dist/**']), { ...LIMITS, maxFiles: 1 })).rejects.toThrow(/more than 1 files/);
  });

  it('refuses control characters in a name; a glob matching nothing fails unless optional', async () => {
    writeFileSync(join(root, 'dist', 'bad\nname'), 'x');
    await expect(collectArtifacts(root, rule(['dist/*']), LIMITS)).rejects.toThrow(/control characters/);
    await expect(collectArtifacts(root, rule(['nope/*', 'dist/app']), LIMITS)).rejects.toThrow('artifact glob "nope/*" matched no file (mark the artifacts optional: true to allow that)');
    expect((await collectArtifacts(root, rule(['nope/*', 'dist/app'], true), LIMITS)).map((f) => f.name)).toEqual(['dist/app']);
  });
});

describe('names, digests and types', () => {
  it('reads the Object Store digest as hex, sizes as text, types by extension', () => {
    // SHA-256 of "" in the Object Store's form (base64url).
    expect(digestHex('SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(100 * 1024 * 1024)).toBe('100 MiB');
    expect(contentTypeOf('out/report.JSON')).toBe('application/json');
    expect(contentTypeOf('bin/app')).toBe('application/octet-stream');
  });
});
