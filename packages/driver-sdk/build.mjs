// Builds the @conveyor/driver-sdk npm package into dist/packages/driver-sdk (run by `npm run build`):
//   1. compiles libs/driver-sdk and the libs it imports (JS + .d.ts) with this directory's tsconfig;
//   2. rewrites the @conveyor/* path aliases to relative paths (tsc-alias), so no import leaves
//      the package but those of real npm packages;
//   3. writes package.json: this template, the repository's version, and as dependencies exactly
//      the npm packages the compiled code requires, with the repository's ranges (peers stay peers);
//   4. adds docs/protocol.md (as PROTOCOL.md) and schemas/*.schema.json.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const out = join(root, 'dist', 'packages', 'driver-sdk');
const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`driver-sdk package: ${message}\n`);
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) fail('tsc failed');
const { replaceTscAliasPaths } = require('tsc-alias');
await replaceTscAliasPaths({ configFile: join(here, 'tsconfig.json') });

const files = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
const builtins = new Set(builtinModules);
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
const required = new Map();
for (const file of files(join(out, 'lib'))) {
  const text = readFileSync(file, 'utf8');
  // Runtime: require("x") in the JS; types: import/export … from 'x' and import('x') in the .d.ts.
  const pattern = file.endsWith('.d.ts') ? /(?:from\s+|import\()\s*['"]([^'"]+)['"]/g : /require\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const [, spec] of text.matchAll(pattern)) {
    if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
    if (spec.startsWith('@conveyor/')) fail(`${relative(root, file)} still imports ${spec}: a lib the package does not bundle`);
    const name = packageOf(spec);
    if (!required.has(name)) required.set(name, relative(out, file));
  }
}

const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const template = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const rangeOf = (name, by) => rootManifest.dependencies?.[name] ?? fail(`${by} requires "${name}", which is not a dependency of the repository's package.json`);
const peers = Object.fromEntries(Object.keys(template.peerDependencies ?? {}).map((name) => [name, rangeOf(name, 'the template (peerDependencies)')]));
const dependencies = Object.fromEntries(
  [...required].filter(([name]) => !(name in peers)).sort(([a], [b]) => a.localeCompare(b)).map(([name, file]) => [name, rangeOf(name, file)]),
);
const { '//': _note, private: _private, ...manifest } = template;
const { name, ...rest } = manifest;
const packageJson = { name, version: rootManifest.version, ...rest, dependencies, peerDependencies: peers };
writeFileSync(join(out, 'package.json'), JSON.stringify(packageJson, null, 2) + '\n');
copyFileSync(join(here, 'README.md'), join(out, 'README.md'));
// The wire protocol a driver speaks, and the JSON Schemas of its messages (for drivers in other languages too).
copyFileSync(join(root, 'docs', 'protocol.md'), join(out, 'PROTOCOL.md'));
mkdirSync(join(out, 'schemas'));
for (const f of readdirSync(join(root, 'schemas')).filter((f) => f.endsWith('.schema.json'))) copyFileSync(join(root, 'schemas', f), join(out, 'schemas', f));
process.stdout.write(`driver-sdk package ${packageJson.version} in ${relative(root, out)}: ${Object.keys(dependencies).length} dependencies, ${Object.keys(peers).length} peers\n`);
