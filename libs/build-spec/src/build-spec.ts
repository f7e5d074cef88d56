import { posix } from 'node:path';
import { isSecretName, SECRET_NAME_RULE } from '@conveyor/secrets';

/** One environment variable of the build, as the resource spec writes it. */
export interface BuildEnvVar {
  name: string;
  value: string;
}

/** An environment variable whose value is a stored secret (`{name, secret}`); container-start resolves it. */
export interface SecretEnvVar {
  name: string;
  secret: string;
}

/**
 * What the built-in drivers (container-start, git-cloner, builder, container-stop) read from a
 * run: the resource's `spec`, over the pipeline step's `config`, over the driver's defaults.
 */
export interface BuildSpec {
  /** git URL; checked again by @conveyor/git before git runs. Only git-cloner needs it. */
  repository?: string;
  /** Branch, tag or commit; the remote's HEAD when absent. */
  ref?: string;
  /** A full commit id to check out, over `ref` (a webhook's version names the pushed commit, so a later push cannot change what it builds). */
  commit?: string;
  /** Set in the container for every command. Merged by name: the spec's value wins over the config's. */
  env: BuildEnvVar[];
  /**
   * Variables whose values are secrets, set only in the container when it is created (never in
   * a message or log). A name is in `env` or here, never both: the higher layer decides which.
   */
  secretEnv: SecretEnvVar[];
  /** Build image; the configured default image when absent. */
  image?: string;
  /** Shell command lines that `builder` runs in order. */
  commands: string[];
  /** Normalised path relative to the repository root (no leading "/", no ".."), when set. */
  workdir?: string;
}

/** The parts of a StepContext this lib reads (a StepContext from @conveyor/driver-sdk fits). */
export interface BuildSpecSource {
  resource: { spec: Record<string, unknown> };
  config: Record<string, unknown>;
}

/** Where the run's workspace (the clone) is mounted in the build container. */
export const WORKSPACE_MOUNT = '/workspace';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Docker's reference grammar is wider, but nothing outside these characters is a valid image name.
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;
const MAX_COMMANDS = 1000;

/** A spec or config value of the wrong shape; the message names the key and the source. */
export class BuildSpecError extends Error {}

/**
 * Reads and checks the build keys of a step: resource `spec` wins over the step's `config`,
 * which wins over `defaults`. Keys other drivers understand are left alone. A key set to null
 * counts as not set. Throws a BuildSpecError (its message says which key of which source is
 * wrong and why), so a driver that calls this fails its step with that message.
 */
export function resolveBuildSpec(source: BuildSpecSource, defaults: Partial<BuildSpec> = {}): BuildSpec {
  const spec = readKeys(source.resource.spec, 'resource spec');
  const config = readKeys(source.config, 'step config');
  const pick = <K extends keyof SpecKeys>(key: K): SpecKeys[K] | undefined => (spec[key] ?? config[key] ?? defaults[key]) as SpecKeys[K] | undefined;
  const env = mergeEnv(defaults.env ?? [], config.env ?? [], spec.env ?? []);
  return {
    repository: pick('repository'),
    ref: pick('ref'),
    commit: pick('commit'),
    env: env.filter((e): e is BuildEnvVar => 'value' in e),
    secretEnv: env.filter((e): e is SecretEnvVar => 'secret' in e),
    image: pick('image'),
    commands: pick('commands') ?? [],
    workdir: pick('workdir'),
  };
}

/** The directory commands run in inside the container: /workspace or /workspace/<workdir>. */
export function containerWorkdir(spec: Pick<BuildSpec, 'workdir'>): string {
  return spec.workdir ? posix.join(WORKSPACE_MOUNT, spec.workdir) : WORKSPACE_MOUNT;
}

type EnvEntry = BuildEnvVar | SecretEnvVar;
type SpecKeys = Omit<BuildSpec, 'env' | 'secretEnv'>;

function readKeys(raw: unknown, where: string): Partial<SpecKeys> & { env?: EnvEntry[] } {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new BuildSpecError(`${where} must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const fail = (key: string, why: string): never => {
    throw new BuildSpecError(`${where}: "${key}" ${why}`);
  };
  const text = (key: keyof BuildSpec): string | undefined => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') fail(key, `must be a string, not ${kindOf(v)}`);
    return v as string;
  };
  const out: Partial<SpecKeys> & { env?: EnvEntry[] } = {};

  const repository = text('repository');
  if (repository !== undefined) {
    if (!repository.trim()) fail('repository', 'must not be empty');
    out.repository = repository;
  }
  const ref = text('ref');
  if (ref !== undefined && ref !== '') out.ref = ref;
  const commit = text('commit');
  if (commit !== undefined && commit !== '') {
    if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(commit)) fail('commit', `${JSON.stringify(commit.slice(0, 80))} is not a full commit id (40 or 64 hex digits)`);
    out.commit = commit.toLowerCase();
  }

  const image = text('image');
  if (image !== undefined && image.trim() !== '') {
    if (!IMAGE.test(image)) fail('image', `${JSON.stringify(image)} is not an image name (such as conveyor/build:latest or registry:5000/team/app@sha256:...)`);
    out.image = image;
  }

  if (o.env !== undefined && o.env !== null) {
    if (!Array.isArray(o.env)) fail('env', `must be an array of {name, value}, not ${kindOf(o.env)}`);
    out.env = (o.env as unknown[]).map((item, i): EnvEntry => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) fail(`env[${i}]`, `must be an object {name, value}, not ${kindOf(item)}`);
      const { name, value, secret } = item as Record<string, unknown>;
      if (name === undefined) fail(`env[${i}]`, 'has no "name"');
      if (typeof name !== 'string') fail(`env[${i}].name`, `must be a string, not ${kindOf(name)}`);
      if (!ENV_NAME.test(name as string)) fail(`env[${i}].name`, `${JSON.stringify(name)} is not a variable name (letters, digits and "_", not starting with a digit)`);
      if (secret !== undefined) {
        if (value !== undefined) fail(`env[${i}]`, `("${name}") has both "value" and "secret"; give one`);
        if (!isSecretName(secret)) fail(`env[${i}].secret`, `must be a secret name (${SECRET_NAME_RULE})`);
        return { name: name as string, secret: secret as string };
      }
      if (value === undefined) fail(`env[${i}]`, `("${name}") has no "value"`);
      if (typeof value !== 'string') fail(`env[${i}].value`, `must be a string, not ${kindOf(value)}`);
      if ((value as string).includes('\0')) fail(`env[${i}].value`, 'must not contain a NUL character');
      return { name: name as string, value: value as string };
    });
  }

  if (o.commands !== undefined && o.commands !== null) {
    if (!Array.isArray(o.commands)) fail('commands', `must be an array of command lines, not ${kindOf(o.commands)}`);
    const commands = o.commands as unknown[];
    if (commands.length > MAX_COMMANDS) fail('commands', `has ${commands.length} entries; at most ${MAX_COMMANDS} are allowed`);
    out.commands = commands.map((c, i) => {
      if (typeof c !== 'string') fail(`commands[${i}]`, `must be a string, not ${kindOf(c)}`);
      if (!(c as string).trim()) fail(`commands[${i}]`, 'must not be empty');
      if ((c as string).includes('\0')) fail(`commands[${i}]`, 'must not contain a NUL character');
      return c as string;
    });
  }

  const workdir = text('workdir');
  if (workdir !== undefined) out.workdir = checkWorkdir(workdir, (why) => fail('workdir', why));
  return out;
}

/** A path inside the repository: relative, without "..", normalised ("a/./b/" -> "a/b"); "" or "." is the root. */
function checkWorkdir(raw: string, fail: (why: string) => never): string | undefined {
  if (raw.includes('\0')) fail('must not contain a NUL character');
  if (raw.startsWith('/')) fail(`${JSON.stringify(raw)} is an absolute path; give a path relative to the repository root`);
  if (raw.split(/[\\/]/).includes('..')) fail(`${JSON.stringify(raw)} leaves the repository ("..")`);
  const normal = posix.normalize(raw).replace(/\/+$/, '');
  return normal === '' || normal === '.' ? undefined : normal;
}

function mergeEnv(...layers: EnvEntry[][]): EnvEntry[] {
  const byName = new Map<string, EnvEntry>();
  for (const layer of layers) for (const e of layer) byName.set(e.name, e);
  return [...byName.values()];
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
