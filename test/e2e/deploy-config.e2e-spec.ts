import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { checkExposure } from '@conveyor/auth';
import { loadConfig } from '@conveyor/config';
import { NATS_SERVER_MIN_VERSION, serverVersionProblem } from '@conveyor/jetstream';

/**
 * The deployment files cannot be run here (no registry, no cluster), but the environment they
 * give each app can be checked: every app's configuration must load, and the gateway, which
 * listens beyond loopback there, must have what it refuses to start without (API tokens).
 */
const DEPLOY = join(__dirname, '..', '..', 'deploy');
const TOKENS = 'stand-in-token-0123456789abcdef0123:admin';
const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');
/** What an operator exports before `docker compose up` or puts in the Secret, per the files' own instructions. */
const OPERATOR = { CONVEYOR_API_TOKENS: TOKENS, CONVEYOR_SECRET_KEY: SECRET_KEY };

type Env = Record<string, string>;

/** nats-server's minor line deploy/local/setup.sh installs (Debian forky's); deploy/lint.sh checks the same. */
const NATS_LINE = '2.15';
/** A tag of that line: 2.15, 2.15.1, 2.15-alpine, 2.15.1-alpine3.22 (not 2.150). */
const LINE_TAG = new RegExp(`^${NATS_LINE.replace('.', '\\.')}(?:\\.\\d+)?(?:-[\\w.]+)?$`);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Loads an app's configuration as its main.ts does; the gateway also checks its exposure. */
function startUp(env: Env): void {
  const config = loadConfig(env);
  if (env.APP === 'gateway') checkExposure(config.http.host, config.auth);
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`. */
function interpolate(value: string, shell: Env): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const v = shell[name];
    if (v) return v;
    if (op === '?') throw new Error(`compose: ${name}: ${arg}`);
    return op === '-' ? (arg ?? '') : '';
  });
}

function composeApps(shell: Env): Array<{ service: string; env: Env }> {
  const doc = parse(readFileSync(join(DEPLOY, 'compose', 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
  return Object.entries(doc.services)
    .filter(([, s]) => s.environment?.APP)
    .map(([service, s]) => ({ service, env: Object.fromEntries(Object.entries(s.environment!).map(([k, v]) => [k, interpolate(String(v), shell)])) }));
}

interface Container {
  name: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }>;
}

function k8sApps(secret: Env | undefined): Array<{ workload: string; env: Env }> {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, 'k8s', 'conveyor.yaml'), 'utf8')).map((d) => d.toJS());
  const configMaps = new Map<string, Env>(docs.filter((d) => d?.kind === 'ConfigMap').map((d) => [d.metadata.name, d.data]));
  // What the downward API gives on a typical cloud node.
  const fields: Env = { 'spec.nodeName': 'ip-10-0-1-23.ec2.internal', 'metadata.name': 'builder-x7k2p' };
  return docs
    .filter((d) => d?.kind === 'Deployment' || d?.kind === 'DaemonSet')
    .flatMap((d) => (d.spec.template.spec.containers as Container[]).map((c) => {
      const env: Env = {};
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) Object.assign(env, configMaps.get(from.configMapRef.name));
        if (from.secretRef) {
          if (secret) Object.assign(env, secret);
          else if (!from.secretRef.optional) throw new Error(`${d.kind}/${d.metadata.name}: secret "${from.secretRef.name}" not found`);
        }
      }
      for (const e of c.env ?? []) env[e.name] = e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''];
      return { workload: `${d.kind}/${d.metadata.name}`, env };
    }));
}

describe('deployment files run the NATS server the apps need', () => {
  it(`the ${NATS_LINE} line is one the apps accept (at least ${NATS_SERVER_MIN_VERSION})`, () => {
    expect(serverVersionProblem(`${NATS_LINE}.0`)).toBeUndefined();
  });

  it(`compose: every NATS node runs a nats:${NATS_LINE} image`, () => {
    const doc = parse(readFileSync(join(DEPLOY, 'compose', 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { image?: string }> };
    const nats = Object.entries(doc.services).filter(([, s]) => s.image?.startsWith('nats:'));
    expect(nats.map(([name]) => name).sort()).toEqual(['nats-1', 'nats-2', 'nats-3']);
    for (const [name, s] of nats) expect({ name, tag: s.image!.slice('nats:'.length) }).toEqual({ name, tag: expect.stringMatching(LINE_TAG) });
  });

  it(`Kubernetes: the NATS Helm values pin a nats:${NATS_LINE} image`, () => {
    const values = parse(readFileSync(join(DEPLOY, 'k8s', 'nats-values.yaml'), 'utf8')) as { container?: { image?: { repository?: string; tag?: unknown } } };
    expect(values.container?.image?.repository).toBe('nats');
    expect(values.container?.image?.tag).toEqual(expect.stringMatching(LINE_TAG));
  });

  it(`no file in deploy/ names a nats image of another line`, () => {
    const named: Array<{ file: string; tag: string }> = [];
    for (const file of filesUnder(DEPLOY)) {
      // `nats:<tag>` (not `nats://`, not a YAML key `nats:`); the Helm values split repository and tag (above).
      for (const m of readFileSync(file, 'utf8').matchAll(/(?<![\w./-])nats:([A-Za-z0-9][^\s"',;]*)/g)) named.push({ file: relative(DEPLOY, file), tag: m[1] });
    }
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((n) => !LINE_TAG.test(n.tag)).map((n) => `${n.file}: nats:${n.tag}`)).toEqual([]);
  });
});

describe('deployment files give every app a configuration it starts with', () => {
  it('compose: every app starts with what the file says to export; without tokens compose itself stops', () => {
    const apps = composeApps(OPERATOR);
    expect(apps.map((a) => a.env.APP).sort()).toEqual(['builder', 'container-start', 'container-stop', 'gateway', 'git-cloner']);
    for (const { env } of apps) expect(() => startUp(env)).not.toThrow();
    const gateway = apps.find((a) => a.env.APP === 'gateway')!.env;
    expect(gateway.CONVEYOR_HTTP_HOST).toBe('0.0.0.0');
    expect(() => composeApps({})).toThrow(/CONVEYOR_API_TOKENS/);
  });

  it('Kubernetes: every app starts with the Secret made as the file says; the gateway does not start without it', () => {
    const apps = k8sApps(OPERATOR);
    expect(apps.map((a) => a.env.APP).sort()).toEqual(['builder', 'container-start', 'container-stop', 'gateway', 'git-cloner']);
    for (const { env } of apps) expect(() => startUp(env)).not.toThrow();
    // Node names with dots are machine ids as they come.
    expect(loadConfig(apps.find((a) => a.env.APP === 'builder')!.env).agent.machine).toBe('ip-10-0-1-23-ec2-internal');
    expect(() => k8sApps(undefined)).toThrow(/Deployment\/gateway: secret "conveyor" not found/);
  });

  it("Dockerfile: the gateway starts with its ENV and the documented `docker run` flags, and refuses without the token", () => {
    const text = readFileSync(join(DEPLOY, 'docker', 'Dockerfile'), 'utf8');
    const env: Env = {};
    // ENV NAME=value [\ NAME=value ...]
    for (const m of text.matchAll(/^ENV\s+((?:[^\n]*\\\n)*[^\n]*)/gm)) {
      for (const kv of m[1].replace(/\\\n/g, ' ').trim().split(/\s+/)) {
        const [k, v] = kv.split('=');
        env[k] = v;
      }
    }
    const run = /^#\s+docker run -e APP=gateway((?:[^\n]*\\\n#)*[^\n]*)/m.exec(text);
    expect(run).not.toBeNull();
    const flags = Object.fromEntries([...run![1].matchAll(/-e ([A-Z_]+)=("[^"]*"|\S+)/g)].map((m) => [m[1], m[2].replace(/^"|"$/g, '').replace('$(openssl rand -hex 24)', 'x'.repeat(48))]));
    expect(flags.CONVEYOR_API_TOKENS).toMatch(/:admin$/);
    expect(() => startUp({ ...env, APP: 'gateway', ...flags })).not.toThrow();
    expect(() => startUp({ ...env, APP: 'gateway' })).toThrow(/refusing to listen on 0\.0\.0\.0 without API tokens/);
  });
});
