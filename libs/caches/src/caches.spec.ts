import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheError, hashFiles, readCacheRules, renderCacheKey } from './cache-rules';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest();

describe('readCacheRules', () => {
  it('reads {key, paths, restoreKeys?}, one or a list', () => {
    expect(readCacheRules(undefined)).toEqual([]);
    expect(readCacheRules({ key: 'npm-${{ hashFiles(\'package-lock.json\') }}', paths: ['./node_modules'] })).toEqual([
      { key: "npm-${{ hashFiles('package-lock.json') }}", paths: ['node_modules'], restoreKeys: [] },
    ]);
    expect(readCacheRules([{ key: 'a', paths: ['x'], restoreKeys: ['a-', 'a'] }])[0].restoreKeys).toEqual(['a-', 'a']);
  });

  it.each([
    ['npm', /must be \{key, paths/],
    [{ paths: ['x'] }, /key must be a non-empty string/],
    [{ key: 'a/b', paths: ['x'] }, /a key is letters, digits/],
    [{ key: 'a ${{ secrets.x }}', paths: ['x'] }, /is not one of hashFiles/],
    [{ key: "k-${{ hashFiles('../etc/passwd') }}", paths: ['x'] }, /without ".."/],
    [{ key: 'k', paths: [] }, /paths must list/],
    [{ key: 'k', paths: ['/etc'] }, /not a path inside the workspace/],
    [{ key: 'k', paths: ['a/../../b'] }, /not a path inside the workspace/],
    [{ key: 'k', paths: ['x'], restoreKeys: ['a b'] }, /restoreKeys must be key prefixes/],
  ])('refuses %j', (raw, why) => {
    expect(() => readCacheRules(raw)).toThrow(CacheError);
    expect(() => readCacheRules(raw)).toThrow(why);
  });
});

describe('cache keys', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'conveyor-cache-'));
    mkdirSync(join(root, 'a'));
    mkdirSync(join(root, '.git'));
    writeFileSync(join(root, 'package-lock.json'), 'lock-1');
    writeFileSync(join(root, 'a', 'go.sum'), 'sum');
    writeFileSync(join(root, '.git', 'go.sum'), 'never');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("hashFiles is the SHA-256 of the files' SHA-256s in path order (never .git, never through symlinks); empty for none", async () => {
    expect(await hashFiles(root, ['package-lock.json'])).toBe(createHash('sha256').update(sha('lock-1')).digest('hex'));
    expect(await hashFiles(root, ['**/go.sum', 'package-lock.json'])).toBe(createHash('sha256').update(sha('sum')).update(sha('lock-1')).digest('hex'));
    expect(await hashFiles(root, ['nothing/*'])).toBe('');
    symlinkSync('/etc/hostname', join(root, 'linked.json'));
    expect(await hashFiles(root, ['*.json'])).toBe(await hashFiles(root, ['package-lock.json']));
  });

  it('fills the template; a change of the hashed file changes the key', async () => {
    const vars = { workspace: root, pipeline: 'ci', resource: { name: 'app', type: 'thing' } };
    const k1 = await renderCacheKey("npm-${{ resource.name }}-${{ hashFiles('package-lock.json') }}", vars);
    expect(k1).toMatch(/^npm-app-[0-9a-f]{64}$/);
    writeFileSync(join(root, 'package-lock.json'), 'lock-2');
    expect(await renderCacheKey("npm-${{ resource.name }}-${{ hashFiles('package-lock.json') }}", vars)).not.toBe(k1);
    expect(await renderCacheKey('plain-${{ pipeline }}', vars)).toBe('plain-ci');
    await expect(renderCacheKey('x'.repeat(500) + "${{ hashFiles('package-lock.json') }}", vars)).rejects.toThrow(/at most 512/);
  });
});
