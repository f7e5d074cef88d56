import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { startGateway, type RunningGateway } from '../support/gateway';
import { NatsServer } from '../support/nats-server';

jest.setTimeout(300_000);

const ADMIN = `admin-${randomBytes(16).toString('hex')}`;
/** Runs per endpoint: bounded, and enough to reach past the first validation layer. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Values a field might get: plausible ones, hostile ones, and anything JSON. */
const field = fc.oneof(
  fc.constantFrom('app', 'ci', 'deploy-token', 'container-start', '', ' ', '-rf', '../../etc/passwd', 'a.b', 'x'.repeat(64), 'x'.repeat(5000), '\u0000', '$KV.>', 'conveyor.>', '*'),
  fc.string(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 3 }),
);
const loose = <T extends Record<string, fc.Arbitrary<unknown>>>(shape: T) => fc.record(shape, { requiredKeys: [] });
const schema = fc.oneof(
  fc.constant({ type: 'object' }),
  loose({ type: fc.constantFrom('object', 'string', 'array', 'nonsense'), properties: fc.jsonValue({ maxDepth: 3 }), required: field, $ref: field, pattern: fc.constantFrom('(a+)+$', '[', '.*') }),
  fc.jsonValue({ maxDepth: 4 }),
);
const step = loose({ id: field, name: field, driver: fc.oneof(field, fc.constantFrom('builder', 'container-stop')), timeout: field, retries: field, always: field, config: fc.jsonValue({ maxDepth: 3 }) });
const envEntry = loose({ name: field, value: field, secret: field });
const bodies = {
  definition: loose({ name: field, description: field, version: field, schema }),
  pipeline: loose({ name: field, description: field, resource: fc.oneof(fc.constant('app'), field), steps: fc.oneof(fc.array(step, { maxLength: 60 }), field) }),
  resource: loose({ name: field, resource: fc.oneof(fc.constant('app'), field), pipeline: fc.oneof(fc.constant('ci'), field), spec: fc.oneof(loose({ env: fc.oneof(fc.array(envEntry, { maxLength: 5 }), field), repository: field, commands: field }), field), metadata: field }),
  secret: loose({ value: field }),
  schedule: loose({
    name: field,
    cron: fc.oneof(fc.constantFrom('0 3 * * *', '0 0 3 * * *', '61 * * * *', '* * *', '@daily', 'L W # ?', '0 0 30 2 *'), field),
    timezone: fc.oneof(fc.constantFrom('UTC', 'Europe/Berlin', 'Mars/Olympus', '+01:00', 'utc'), field),
    resource: fc.oneof(fc.constant('app'), field),
    pipeline: fc.oneof(fc.constant('ci'), field),
    resourceName: field,
    spec: fc.oneof(fc.constant({}), field),
  }),
  trigger: loose({
    name: field,
    source: fc.oneof(fc.constantFrom('github', 'gitea', 'gitlab', 'generic', 'GitHub'), field),
    secret: fc.oneof(fc.constant('deploy-token'), field),
    repository: field,
    events: fc.oneof(fc.constant(['push']), fc.array(fc.oneof(fc.constantFrom('push', 'tag', 'pull_request', 'release'), field), { maxLength: 4 }), field),
    branches: fc.oneof(fc.array(fc.oneof(fc.constantFrom('main', 'release/*', '!x', '[', '**', ''), field), { maxLength: 4 }), field),
    resource: fc.oneof(fc.constant('app'), field),
    pipeline: fc.oneof(fc.constant('ci'), field),
    resourceName: fc.oneof(fc.constantFrom('x-${{ branch }}', '${{ nope }}', '${{ trigger }}-${{ repository.name }}'), field),
    spec: fc.oneof(fc.constant({}), fc.constant({ a: '${{ event.commit }}' }), field),
    status: fc.oneof(loose({ api: fc.oneof(fc.constantFrom('https://api.github.com', 'ftp://x', 'http://u:p@h'), field), token: fc.oneof(fc.constant('deploy-token'), field), forge: field, project: field, context: field }), field),
  }),
  any: fc.jsonValue({ maxDepth: 4 }),
};

const FIXTURES = join(__dirname, '..', '..', 'libs', 'triggers', 'fixtures');
const fixture = (f: string) => JSON.parse(readFileSync(join(FIXTURES, `${f}.json`), 'utf8')) as Record<string, unknown>;
/** Each source's documented payloads, with the event header each goes with. */
const forgeDeliveries: Record<string, Array<[string, Record<string, unknown>]>> = {
  github: [['push', fixture('github-push')], ['push', fixture('github-tag')], ['pull_request', fixture('github-pull_request')], ['ping', fixture('github-ping')], ['push', fixture('github-push-deleted')]],
  gitea: [['push', fixture('gitea-push')], ['pull_request', fixture('gitea-pull_request')]],
  gitlab: [['Push Hook', fixture('gitlab-push')], ['Tag Push Hook', fixture('gitlab-tag_push')], ['Merge Request Hook', fixture('gitlab-merge_request')]],
  generic: [['push', { ref: 'refs/heads/main', commit: 'a'.repeat(40), repository: 'file:///srv/app.git', sender: 'dev' }], ['tag', { ref: 'refs/tags/v1', commit: 'b'.repeat(40) }], ['', { ref: 'refs/heads/x', commit: 'c'.repeat(40) }]],
};
const mutation = fc.array(fc.tuple(fc.constantFrom('ref', 'after', 'before', 'repository', 'head_commit', 'pull_request', 'action', 'number', 'object_kind', 'project', 'checkout_sha', 'object_attributes', 'commit', 'sender'), fc.option(fc.constantFrom('clone_url', 'full_name', 'id', 'head', 'sha', 'git_http_url', 'iid', 'last_commit')), field), { maxLength: 3 });
/** A delivery of one source: one of its payloads with some fields (top-level or one level down) replaced by fuzz, and usually its own event header. */
const hookDelivery = fc.constantFrom('github', 'gitea', 'gitlab', 'generic').chain((source) =>
  fc.record({
    source: fc.constant(source),
    picked: fc.constantFrom(...forgeDeliveries[source]),
    changes: fc.oneof({ weight: 2, arbitrary: fc.constant([] as Array<[string, string | null, unknown]>) }, { weight: 3, arbitrary: mutation }),
    event: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom('push', 'pull_request', 'ping', 'Push Hook', 'issues', ''), fc.string({ maxLength: 30 })) }),
  }).map(({ source, picked: [ownEvent, base], changes, event }) => {
    const body = structuredClone(base);
    for (const [key, sub, value] of changes) {
      const target = body[key];
      if (sub && typeof target === 'object' && target !== null && !Array.isArray(target)) (target as Record<string, unknown>)[sub] = value;
      else body[key] = value;
    }
    return { source, body, event: event ?? ownEvent };
  }),
);

/** A body as sent: the JSON of a near-valid object, of anything, a truncated JSON text, or raw text. */
function wire(near: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: near.map((b) => JSON.stringify(b)) },
    { weight: 1, arbitrary: bodies.any.map((b) => JSON.stringify(b) ?? 'null') },
    { weight: 1, arbitrary: fc.tuple(near, fc.nat()).map(([b, n]) => { const t = JSON.stringify(b); return t.slice(0, n % (t.length + 1)); }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  );
}

/**
 * Property-based fuzzing of every request body (and of path names) against the real gateway on
 * a real nats-server: whatever a client sends, the answer is never a 5xx and the gateway stays up.
 * Reproduce a failure with FUZZ_SEED=<seed printed below>.
 */
describe('fuzz: no request body yields a 500 or a crash', () => {
  let nats: NatsServer;
  let gw: RunningGateway;
  /** Every status seen: proves the fuzz got past the first check as well as being refused by it. */
  const seen = new Map<number, number>();
  const send = async (method: string, path: string, body?: string) => {
    const res = await fetch(gw.url + path, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body });
    await res.arrayBuffer();
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
    return res.status;
  };

  beforeAll(async () => {
    // eslint-disable-next-line no-console
    console.log(`fuzz seed ${SEED} (${RUNS} runs per endpoint); reproduce with FUZZ_SEED=${SEED}`);
    nats = await NatsServer.start();
    gw = await startGateway(nats.url, { CONVEYOR_API_TOKENS: `${ADMIN}:admin`, CONVEYOR_SECRET_KEY: randomBytes(32).toString('base64'), CONVEYOR_BODY_LIMIT: '64kb' });
    await send('POST', '/resource-definitions', JSON.stringify({ name: 'app', schema: { type: 'object' } }));
    await send('POST', '/pipelines', JSON.stringify({ name: 'ci', resource: 'app', steps: [{ id: 'a', name: 'a', driver: 'nobody' }] }));
    await send('POST', '/resources', JSON.stringify({ name: 'web', resource: 'app', spec: {} }));
    await send('PUT', '/secrets/deploy-token', JSON.stringify({ value: 'v'.repeat(20) }));
    await send('POST', '/schedules', JSON.stringify({ name: 'nightly', cron: '0 3 * * *', resource: 'app', pipeline: 'ci', spec: {} }));
    for (const source of ['github', 'gitea', 'gitlab', 'generic']) {
      // `github` is fuzzed by PUT below; `hook-github` and the like take the fuzzed deliveries.
      for (const name of [source, `hook-${source}`]) await send('POST', '/triggers', JSON.stringify({ name, source, secret: 'deploy-token', resource: 'app', pipeline: 'ci', events: ['push', 'tag', 'pull_request'] }));
    }
  });
  afterAll(async () => {
    // eslint-disable-next-line no-console
    console.log(`statuses seen: ${JSON.stringify(Object.fromEntries(seen))}`);
    await gw?.close();
    await nats?.dispose();
  });

  const endpoints: Array<[string, string, fc.Arbitrary<unknown>]> = [
    ['POST', '/resource-definitions', bodies.definition],
    ['POST', '/resource-definitions/apply', bodies.definition],
    ['PUT', '/resource-definitions/app', bodies.definition],
    ['POST', '/pipelines', bodies.pipeline],
    ['PUT', '/pipelines/ci', bodies.pipeline],
    ['POST', '/resources', bodies.resource],
    ['PUT', '/resources/app/web', bodies.resource],
    ['PUT', '/secrets/fuzzed', bodies.secret],
    ['POST', '/schedules', bodies.schedule],
    ['PUT', '/schedules/nightly', bodies.schedule],
    ['POST', '/triggers', bodies.trigger],
    ['PUT', '/triggers/github', bodies.trigger],
    ['POST', `/runs/${'0'.repeat(26)}/cancel`, bodies.any],
  ];

  it.each(endpoints)('%s %s', async (method, path, near) => {
    await fc.assert(
      fc.asyncProperty(wire(near), async (body) => {
        const status = await send(method, path, body);
        return status >= 200 && status < 500;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(await send('GET', '/health')).toBe(200);
  });

  it('fuzzed names in paths and queries', async () => {
    const segment = fc.oneof(fc.string(), fc.constantFrom('..', '.', '%2e%2e', 'a'.repeat(300), '*', '>', 'app', 'web', '01'.repeat(13)));
    const template = fc.constantFrom(
      'GET /resource-definitions/$', 'DELETE /pipelines/$', 'GET /pipelines/$', 'GET /resources/$/$', 'GET /resources/app/$/$', 'DELETE /resources/$/$',
      'GET /runs/$', 'POST /runs/$/cancel', 'GET /logs?runid=$&driver=$', 'GET /runs?status=$&limit=$', 'GET /drivers?driver=$', 'DELETE /secrets/$', 'GET /resources?resource=$',
      'GET /schedules/$', 'DELETE /schedules/$', 'GET /triggers/$', 'POST /hooks/$', 'GET /runs/$/artifacts', 'GET /runs/01m8w6fhd0c3v52sabgjk3tyrn/artifacts/$/$', 'DELETE /caches/$',
    );
    await fc.assert(
      fc.asyncProperty(template, fc.array(segment, { minLength: 2, maxLength: 2 }), async (t, [a, b]) => {
        let i = 0;
        const [method, path] = t.replace(/\$/g, () => encodeURIComponent([a, b][i++ % 2])).split(' ');
        const status = await send(method, path);
        return status >= 200 && status < 500;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(await send('GET', '/health')).toBe(200);
  });

  it('webhooks: whatever is delivered, signed or not, never a 5xx, and only a correctly signed one starts a run', async () => {
    const SECRET = 'v'.repeat(20);
    const started = new Set<string>();
    const names: Record<string, [string, string, string]> = {
      github: ['x-github-event', 'x-github-delivery', 'x-hub-signature-256'],
      gitea: ['x-gitea-event', 'x-gitea-delivery', 'x-gitea-signature'],
      gitlab: ['x-gitlab-event', 'x-gitlab-event-uuid', 'x-gitlab-token'],
      generic: ['x-conveyor-event', 'x-conveyor-delivery', 'x-conveyor-signature-256'],
    };
    const signing = fc.constantFrom('right', 'right', 'right', 'wrong', 'none', 'other-body');
    await fc.assert(
      fc.asyncProperty(
        hookDelivery.chain((d) => wire(fc.constant(d.body)).map((body) => ({ ...d, body }))),
        signing,
        fc.oneof({ weight: 4, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom('same-delivery', '', ' ', 'a b'), fc.string({ maxLength: 40 })) }),
        async ({ source, body, event }, how, delivery) => {
          const [eventHeader, deliveryHeader, signatureHeader] = names[source];
          const hex = (text: string) => createHmac('sha256', how === 'wrong' ? 'not-the-secret' : SECRET).update(text).digest('hex');
          const signed = how === 'other-body' ? `${body} ` : body;
          const signature = source === 'gitlab' ? (how === 'wrong' ? 'nope' : SECRET) : source === 'gitea' ? hex(signed) : `sha256=${hex(signed)}`;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (how !== 'none') headers[signatureHeader] = signature;
          // Header values must be ByteStrings without newlines for fetch to send them.
          const safe = (v: string) => v.replace(/[^\x20-\x7e]/g, '');
          if (safe(event)) headers[eventHeader] = safe(event);
          if (safe(delivery)) headers[deliveryHeader] = safe(delivery);
          const res = await fetch(`${gw.url}/hooks/hook-${source}`, { method: 'POST', headers, body });
          const answer = (await res.json().catch(() => ({}))) as { runid?: string };
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          const genuine = how === 'right' || (how === 'other-body' && source === 'gitlab');
          if (res.status === 202) {
            if (!genuine || !answer.runid) return false;
            started.add(answer.runid);
          }
          return res.status < 500;
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Every run there is was answered to a signed delivery (the pipeline's driver never takes them, so they stay).
    const runs = (await (await fetch(`${gw.url}/runs?limit=500`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as Array<{ id: string; resource: { name: string } }>;
    const fromHooks = runs.filter((r) => r.resource.name.startsWith('hook-'));
    expect(new Set(fromHooks.map((r) => r.id))).toEqual(started);
    // Not vacuous: signed deliveries got through to runs.
    expect(started.size).toBeGreaterThan(0);
    expect(await send('GET', '/health')).toBe(200);
  });

  it('reached past validation: both successes and several kinds of refusal were seen', () => {
    const codes = [...seen.keys()];
    expect(codes.filter((c) => c >= 200 && c < 300).length).toBeGreaterThan(0);
    expect(codes.filter((c) => c >= 400 && c < 500).length).toBeGreaterThanOrEqual(2);
    expect(codes.filter((c) => c >= 500)).toEqual([]);
  });
});
