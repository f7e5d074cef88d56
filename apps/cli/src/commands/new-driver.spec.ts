import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT } from '../errors';
import { newDriver } from './new-driver';

describe('conveyor new driver', () => {
  let tmp: string;
  const said: string[] = [];
  const say = (l: string) => said.push(l);
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'conveyor-new-driver-'));
    said.length = 0;
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const refusal = (f: () => void): CliError => {
    try {
      f();
    } catch (err) {
      return err as CliError;
    }
    throw new Error('not refused');
  };

  it('writes a project whose package.json depends on the SDK of this version by default', () => {
    const dir = join(tmp, 'hello');
    newDriver('hello', { dir }, say);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const version = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8')).version;
    expect(pkg).toMatchObject({ name: 'hello-driver', dependencies: { '@conveyor/driver-sdk': `^${version}` }, scripts: { test: expect.stringContaining('node --test') } });
    expect(readFileSync(join(dir, 'src', 'driver.ts'), 'utf8')).toContain("export const DRIVER = 'hello';");
    expect(readFileSync(join(dir, 'src', 'main.ts'), 'utf8')).toContain("import { runDriver } from '@conveyor/driver-sdk';");
    expect(readFileSync(join(dir, 'src', 'driver.test.ts'), 'utf8')).toContain('runStep(');
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain("@HandleStep('hello')");
    expect(said[0]).toBe(`wrote driver "hello" in ${dir} (@conveyor/driver-sdk ^${version})`);
  });

  it('--sdk takes a version as it is and a tarball as a file: dependency; an empty directory is fine', () => {
    const tgz = join(tmp, 'conveyor-driver-sdk-9.9.9.tgz');
    writeFileSync(tgz, 'not read');
    mkdirSync(join(tmp, 'empty'));
    newDriver('a', { dir: join(tmp, 'empty'), sdk: tgz }, say);
    newDriver('b', { dir: join(tmp, 'b'), sdk: '~1.2.3' }, say);
    const dep = (d: string) => JSON.parse(readFileSync(join(tmp, d, 'package.json'), 'utf8')).dependencies['@conveyor/driver-sdk'];
    expect([dep('empty'), dep('b')]).toEqual([`file:${tgz}`, '~1.2.3']);
  });

  it('refuses bad names, bad --sdk and a non-empty directory with exit code 2, writing nothing', () => {
    const cases: Array<[() => void, string]> = [
      [() => newDriver('Hello_World', { dir: join(tmp, 'x') }, say), 'invalid driver name "Hello_World": lowercase letters, digits and "-"'],
      [() => newDriver('-x', { dir: join(tmp, 'x') }, say), 'invalid driver name "-x"'],
      [() => newDriver('ok', { dir: join(tmp, 'x'), sdk: 'latest!' }, say), '--sdk "latest!": give a version'],
      [() => newDriver('ok', { dir: join(tmp, 'x'), sdk: join(tmp, 'missing.tgz') }, say), 'missing.tgz: no such file'],
    ];
    for (const [f, message] of cases) {
      const err = refusal(f);
      expect(err).toBeInstanceOf(CliError);
      expect(err.code).toBe(EXIT.usage);
      expect(err.message).toContain(message);
    }
    mkdirSync(join(tmp, 'used'));
    writeFileSync(join(tmp, 'used', 'keep.txt'), 'mine');
    const err = refusal(() => newDriver('ok', { dir: join(tmp, 'used') }, say));
    expect([err.code, err.message]).toEqual([2, `${join(tmp, 'used')} exists and is not an empty directory: choose another --dir`]);
    expect(readFileSync(join(tmp, 'used', 'keep.txt'), 'utf8')).toBe('mine');
    expect(said).toEqual([]);
  });
});
