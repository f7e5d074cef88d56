import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isName, NAME_RULE } from '@conveyor/contracts';
import { CliError } from '../errors';
import { driverProjectFiles } from '../scaffold/driver-project';

/** A version or range of the SDK on the npm registry: 0.1.0, ^0.1.0, ~1.2.3-rc.1. */
const VERSION_RANGE = /^[~^]?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

export interface NewDriverOptions {
  /** Where to write the project (default ./NAME); must not exist or be empty. */
  dir?: string;
  /** The SDK: a version (range) on the registry, or the path of a packed tarball (npm pack). */
  sdk?: string;
}

/** `conveyor new driver NAME [--dir DIR] [--sdk PATH|VERSION]`: writes a driver project. */
export function newDriver(name: string, opts: NewDriverOptions, say: (line: string) => void): void {
  if (!isName(name)) throw new CliError(`invalid driver name ${JSON.stringify(name)}: ${NAME_RULE}`);
  const dir = resolve(opts.dir ?? name);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new CliError(`${dir} exists and is not an empty directory: choose another --dir`);
  }
  const repo = repositoryManifest();
  const sdk = sdkDependency(opts.sdk, repo.version);
  const files = driverProjectFiles({ name, sdk, typescript: repo.devDependencies.typescript, typesNode: repo.devDependencies['@types/node'] });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  say(`wrote driver "${name}" in ${dir} (@conveyor/driver-sdk ${sdk})`);
  say(`next: cd ${dir} && npm install && npm test`);
}

/** `--sdk`: a path becomes `file:<absolute path>` (it must exist), a version stays; default ^<this version>. */
function sdkDependency(sdk: string | undefined, version: string): string {
  if (sdk === undefined) return `^${version}`;
  if (VERSION_RANGE.test(sdk)) return sdk;
  if (/[/\\]|\.tgz$/.test(sdk)) {
    const path = resolve(sdk);
    if (!existsSync(path)) throw new CliError(`--sdk ${sdk}: no such file (a tarball from "npm pack", or a version such as ${version})`);
    return `file:${path}`;
  }
  throw new CliError(`--sdk ${JSON.stringify(sdk)}: give a version (e.g. ${version} or ^${version}) or the path of a tarball from "npm pack"`);
}

interface RepositoryManifest {
  version: string;
  devDependencies: Record<string, string>;
}

/** Conveyor's package.json (found upward of this file, in the repository or dist/): the SDK version and tool versions. */
function repositoryManifest(): RepositoryManifest {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const m = JSON.parse(readFileSync(file, 'utf8')) as { name?: string } & RepositoryManifest;
      if (m.name === 'conveyor') return m;
    }
    if (dirname(dir) === dir) throw new CliError("cannot find Conveyor's package.json above the CLI: is it installed whole?");
  }
}
