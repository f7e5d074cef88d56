import { BuildSpecError, containerWorkdir, resolveBuildSpec } from './build-spec';

const source = (spec: unknown, config: unknown = {}) => ({ resource: { spec: spec as Record<string, unknown> }, config: config as Record<string, unknown> });

describe('resolveBuildSpec', () => {
  it('reads every key of the resource spec', () => {
    const spec = resolveBuildSpec(source({
      repository: 'https://example.invalid/app.git',
      ref: 'v1.2',
      commit: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01',
      env: [{ name: 'GREETING', value: 'hello' }],
      image: 'conveyor/build:latest',
      commands: ['make', 'make test'],
      workdir: 'app/',
      unrelated: { kept: 'for other drivers' },
    }));
    expect(spec).toEqual({
      repository: 'https://example.invalid/app.git',
      ref: 'v1.2',
      commit: 'abcdef0123456789abcdef0123456789abcdef01',
      env: [{ name: 'GREETING', value: 'hello' }],
      secretEnv: [],
      image: 'conveyor/build:latest',
      commands: ['make', 'make test'],
      workdir: 'app',
    });
  });

  it('has empty commands and env and nothing else when nothing is set', () => {
    expect(resolveBuildSpec(source({}))).toEqual({ env: [], secretEnv: [], commands: [], repository: undefined, ref: undefined, commit: undefined, image: undefined, workdir: undefined });
  });

  it('lets the spec win over the step config, and the config over the defaults', () => {
    const defaults = { image: 'default/image', commands: ['true'], workdir: 'd' };
    expect(resolveBuildSpec(source({}, {}), defaults)).toMatchObject(defaults);
    expect(resolveBuildSpec(source({}, { image: 'config/image', commands: ['make'] }), defaults)).toMatchObject({ image: 'config/image', commands: ['make'], workdir: 'd' });
    expect(resolveBuildSpec(source({ image: 'spec/image' }, { image: 'config/image', commands: ['make'] }), defaults)).toMatchObject({ image: 'spec/image', commands: ['make'] });
    // An explicit empty list in the spec means "no commands", not "use the config's".
    expect(resolveBuildSpec(source({ commands: [] }, { commands: ['make'] })).commands).toEqual([]);
    // null is "not set".
    expect(resolveBuildSpec(source({ image: null }, { image: 'config/image' })).image).toBe('config/image');
  });

  it('merges env by name, the spec winning over the config and the config over the defaults', () => {
    const spec = resolveBuildSpec(
      source({ env: [{ name: 'B', value: 'spec' }, { name: 'C', value: 'spec' }] }, { env: [{ name: 'A', value: 'config' }, { name: 'B', value: 'config' }] }),
      { env: [{ name: 'A', value: 'default' }, { name: 'D', value: 'default' }] },
    );
    expect(spec.env).toEqual([
      { name: 'A', value: 'config' },
      { name: 'D', value: 'default' },
      { name: 'B', value: 'spec' },
      { name: 'C', value: 'spec' },
    ]);
  });

  it.each([
    [{ repository: 42 }, 'resource spec: "repository" must be a string, not a number'],
    [{ repository: '  ' }, 'resource spec: "repository" must not be empty'],
    [{ ref: ['main'] }, 'resource spec: "ref" must be a string, not an array'],
    [{ commit: 'main' }, 'resource spec: "commit" "main" is not a full commit id (40 or 64 hex digits)'],
    [{ image: 'bad image' }, 'resource spec: "image" "bad image" is not an image name'],
    [{ env: { A: '1' } }, 'resource spec: "env" must be an array of {name, value}, not an object'],
    [{ env: ['A=1'] }, 'resource spec: "env[0]" must be an object {name, value}, not a string'],
    [{ env: [{ name: 'OK', value: 'x' }, { name: '1BAD', value: 'x' }] }, 'resource spec: "env[1].name" "1BAD" is not a variable name'],
    [{ env: [{ name: 'A=B', value: 'x' }] }, 'resource spec: "env[0].name" "A=B" is not a variable name'],
    [{ env: [{ value: 'x' }] }, 'resource spec: "env[0]" has no "name"'],
    [{ env: [{ name: 'N' }] }, 'resource spec: "env[0]" ("N") has no "value"'],
    [{ env: [{ name: true, value: 'x' }] }, 'resource spec: "env[0].name" must be a string, not a boolean'],
    [{ env: [{ name: 'N', value: 3 }] }, 'resource spec: "env[0].value" must be a string, not a number'],
    [{ commands: 'make' }, 'resource spec: "commands" must be an array of command lines, not a string'],
    [{ commands: ['make', 7] }, 'resource spec: "commands[1]" must be a string, not a number'],
    [{ commands: ['make', ' '] }, 'resource spec: "commands[1]" must not be empty'],
    [{ workdir: '/etc' }, 'resource spec: "workdir" "/etc" is an absolute path'],
    [{ workdir: '../outside' }, 'resource spec: "workdir" "../outside" leaves the repository ("..")'],
    [{ workdir: 'a/../../b' }, 'resource spec: "workdir" "a/../../b" leaves the repository'],
    [{ workdir: 'a\\..\\b' }, 'leaves the repository'],
    [{ workdir: 3 }, 'resource spec: "workdir" must be a string, not a number'],
  ])('refuses %j with a message naming the key', (spec, message) => {
    expect(() => resolveBuildSpec(source(spec))).toThrow(BuildSpecError);
    expect(() => resolveBuildSpec(source(spec))).toThrow(message);
  });

  it('says when the bad value came from the step config, and refuses a config that is not an object', () => {
    expect(() => resolveBuildSpec(source({}, { commands: [1] }))).toThrow('step config: "commands[0]" must be a string, not a number');
    expect(() => resolveBuildSpec(source({}, ['make']))).toThrow('step config must be a JSON object');
  });

  it('normalises workdir, "." and "" being the repository root', () => {
    expect(resolveBuildSpec(source({ workdir: './a//b/./c/' })).workdir).toBe('a/b/c');
    expect(resolveBuildSpec(source({ workdir: '.' })).workdir).toBeUndefined();
    expect(resolveBuildSpec(source({ workdir: '' })).workdir).toBeUndefined();
    expect(resolveBuildSpec(source({ workdir: '..hidden' })).workdir).toBe('..hidden');
  });
});

describe('containerWorkdir', () => {
  it('is /workspace or a folder inside it', () => {
    expect(containerWorkdir({})).toBe('/workspace');
    expect(containerWorkdir({ workdir: 'app/web' })).toBe('/workspace/app/web');
  });
});

describe('resolveBuildSpec secret env entries', () => {
  const src = (spec: Record<string, unknown>, config: Record<string, unknown> = {}) => ({ resource: { spec }, config });

  it('keeps {name, secret} entries apart from plain values, the higher layer deciding', () => {
    const spec = resolveBuildSpec(src({ env: [{ name: 'TOKEN', secret: 'deploy-token' }, { name: 'A', value: '1' }] }, { env: [{ name: 'A', secret: 'a-secret' }, { name: 'B', secret: 'b' }] }));
    expect(spec.env).toEqual([{ name: 'A', value: '1' }]);
    expect(spec.secretEnv).toEqual([{ name: 'B', secret: 'b' }, { name: 'TOKEN', secret: 'deploy-token' }]);
  });

  it('refuses an entry with both value and secret, or a bad secret name', () => {
    expect(() => resolveBuildSpec(src({ env: [{ name: 'A', value: 'x', secret: 's' }] }))).toThrow(/both "value" and "secret"/);
    expect(() => resolveBuildSpec(src({ env: [{ name: 'A', secret: '../etc' }] }))).toThrow(/env\[0\]\.secret/);
  });
});
