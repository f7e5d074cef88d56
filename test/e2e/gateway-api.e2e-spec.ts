import request from 'supertest';
import { NatsServer } from '../support/nats-server';
import { startGateway, storedState, tutorial, type RunningGateway } from '../support/gateway';

/** Resource definitions, pipelines and resources over HTTP, against a real nats-server. */
describe('gateway API: definitions, pipelines, resources', () => {
  let nats: NatsServer;
  let gw: RunningGateway;
  const http = () => request(gw.url);

  beforeAll(async () => {
    nats = await NatsServer.start();
    gw = await startGateway(nats.url);
  });
  afterAll(async () => {
    await gw?.close();
    await nats?.dispose();
  });

  describe('service endpoints', () => {
    it('reports health with the NATS server it is connected to', async () => {
      const res = await http().get('/health').expect(200);
      expect(res.body).toMatchObject({ status: 'ok', nats: 'connected', server: expect.stringContaining(String(nats.port)) });
    });

    it('serves OpenAPI at /docs and its JSON at /docs-json', async () => {
      await http().get('/docs').expect(200).expect('content-type', /html/);
      const doc = await http().get('/docs-json').expect(200);
      expect(Object.keys(doc.body.paths)).toEqual(
        expect.arrayContaining(['/resource-definitions', '/resource-definitions/apply', '/pipelines/{name}', '/resources/{type}/{name}/{version}', '/runs/{id}/cancel', '/health']),
      );
      expect(doc.body.components.schemas.PipelineDto).toBeDefined();
    });

    it("declares bearer auth and each operation's role in OpenAPI, /health open", async () => {
      const doc = (await http().get('/docs-json').expect(200)).body;
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.paths['/health'].get.security).toEqual([]);
      const role = (path: string, method: string) => ({ security: doc.paths[path][method].security, role: doc.paths[path][method]['x-conveyor-role'] });
      expect(role('/runs', 'get')).toEqual({ security: [{ bearer: [] }], role: 'read' });
      expect(role('/resources', 'post')).toEqual({ security: [{ bearer: [] }], role: 'write' });
      expect(role('/runs/{id}/cancel', 'post')).toEqual({ security: [{ bearer: [] }], role: 'write' });
      expect(role('/pipelines/{name}', 'delete')).toEqual({ security: [{ bearer: [] }], role: 'admin' });
      expect(role('/secrets', 'get')).toEqual({ security: [{ bearer: [] }], role: 'admin' });
    });

    it('answers an unknown path with JSON 404', async () => {
      const res = await http().get('/no-such-thing').expect(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: expect.any(String) });
    });
  });

  describe('resource definitions', () => {
    const def = { name: 'def-a', description: 'first', version: '1.0', schema: { type: 'object', properties: { n: { type: 'integer' } } } };

    it('creates a definition (201) and refuses a second with the same name (409)', async () => {
      const res = await http().post('/resource-definitions').send(def).expect(201);
      expect(res.body).toEqual({ ...def, createdAt: expect.any(String), updatedAt: expect.any(String) });
      expect(res.headers.etag).toMatch(/^"\d+"$/);
      const dup = await http().post('/resource-definitions').send({ ...def, description: 'other' }).expect(409);
      expect(dup.body).toEqual({ statusCode: 409, error: 'Conflict', message: 'resource definition "def-a" already exists' });
      expect((await http().get('/resource-definitions/def-a').expect(200)).body.description).toBe('first');
    });

    it('lists and reads definitions, with the revision as ETag', async () => {
      const list = await http().get('/resource-definitions').expect(200);
      expect(list.body.map((d: { name: string }) => d.name)).toContain('def-a');
      const one = await http().get('/resource-definitions/def-a').expect(200);
      expect(one.body).toMatchObject(def);
      expect(one.headers.etag).toMatch(/^"\d+"$/);
      await http().get('/resource-definitions/missing').expect(404);
    });

    it('applies: creates (201) when missing, updates (200) when present', async () => {
      const created = await http().post('/resource-definitions/apply').send({ ...def, name: 'def-b' }).expect(201);
      const updated = await http().post('/resource-definitions/apply').send({ ...def, name: 'def-b', description: 'changed' }).expect(200);
      expect(updated.body.description).toBe('changed');
      expect(updated.body.createdAt).toBe(created.body.createdAt);
      expect(updated.headers.etag).not.toBe(created.headers.etag);
    });

    it('replaces with PUT, honouring If-Match (409 when stale, nothing changed)', async () => {
      const before = await http().get('/resource-definitions/def-b').expect(200);
      const put = await http().put('/resource-definitions/def-b').set('If-Match', before.headers.etag).send({ ...def, name: undefined, description: 'third' }).expect(200);
      expect(put.body).toMatchObject({ name: 'def-b', description: 'third' });
      const stale = await http().put('/resource-definitions/def-b').set('If-Match', before.headers.etag).send({ schema: {}, description: 'lost' }).expect(409);
      expect(stale.body.message).toMatch(/changed since revision/);
      expect((await http().get('/resource-definitions/def-b')).body.description).toBe('third');
      // Without If-Match the last writer wins.
      await http().put('/resource-definitions/def-b').send({ schema: def.schema, description: 'fourth' }).expect(200);
      await http().put('/resource-definitions/def-b').set('If-Match', 'garbage').send({ schema: {} }).expect(400);
      await http().put('/resource-definitions/def-b').send({ name: 'other', schema: {} }).expect(400);
      await http().put('/resource-definitions/nope').send({ schema: {} }).expect(404);
    });

    it('refuses a schema that is not a valid JSON Schema, with ajv\'s message', async () => {
      const before = await storedState(gw.url);
      const unknownKeyword = await http().post('/resource-definitions').send({ name: 'bad', schema: { type: 'object', propertees: {} } }).expect(400);
      expect(unknownKeyword.body.message).toMatch(/^schema is not a valid JSON Schema: .*unknown keyword: "propertees"/);
      const badType = await http().post('/resource-definitions').send({ name: 'bad', schema: { type: 'strnig' } }).expect(400);
      expect(badType.body.message).toMatch(/^schema is not a valid JSON Schema: .*type/);
      await http().post('/resource-definitions/apply').send({ name: 'def-a', schema: { minLength: -1 } }).expect(400);
      await http().put('/resource-definitions/def-a').send({ schema: { $ref: 'http://example.invalid/s.json' } }).expect(400);
      expect(await storedState(gw.url)).toEqual(before);
    });

    it('deletes with If-Match (409 when stale), then the name is free again', async () => {
      const cur = await http().get('/resource-definitions/def-b').expect(200);
      await http().delete('/resource-definitions/def-b').set('If-Match', '"1"').expect(409);
      await http().get('/resource-definitions/def-b').expect(200);
      await http().delete('/resource-definitions/def-b').set('If-Match', cur.headers.etag).expect(204);
      await http().get('/resource-definitions/def-b').expect(404);
      await http().delete('/resource-definitions/def-b').expect(404);
      await http().post('/resource-definitions').send({ ...def, name: 'def-b' }).expect(201);
    });
  });

  describe('pipelines', () => {
    beforeAll(async () => {
      await http().post('/resource-definitions').send(tutorial.definition).expect(201);
    });

    it('creates the tutorial pipeline and reads it back', async () => {
      const res = await http().post('/pipelines').send(tutorial.pipeline).expect(201);
      expect(res.body).toEqual({ ...tutorial.pipeline, createdAt: expect.any(String), updatedAt: expect.any(String) });
      const got = await http().get('/pipelines/flutter-pipeline').expect(200);
      expect(got.body.steps).toEqual(tutorial.pipeline.steps);
      expect(got.headers.etag).toMatch(/^"\d+"$/);
      expect((await http().get('/pipelines').expect(200)).body.map((p: { name: string }) => p.name)).toEqual(['flutter-pipeline']);
      await http().post('/pipelines').send(tutorial.pipeline).expect(409);
    });

    it('refuses bad pipelines with the failing field named, storing nothing', async () => {
      const before = await storedState(gw.url);
      const step = (id: string, driver = 'git-cloner') => ({ id, name: `step ${id}`, driver });
      const dupIds = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [step('a'), step('b'), step('a')] }).expect(400);
      expect(dupIds.body.message).toBe('steps.2.id "a" is used by an earlier step; step ids must be unique');
      const reserved = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [step('a', 'gateway-runs')] }).expect(400);
      expect(reserved.body.message).toMatch(/^steps\.0\.driver "gateway-runs" is reserved/);
      const unknownNeed = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [step('a'), { ...step('b'), needs: ['zz'] }] }).expect(400);
      expect(unknownNeed.body.message).toBe('steps.1 ("b") needs "zz", which is not a step of this pipeline');
      const selfNeed = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [{ ...step('a'), needs: ['a'] }] }).expect(400);
      expect(selfNeed.body.message).toBe('steps.0 ("a") needs itself');
      const cycle = await http()
        .post('/pipelines')
        .send({ name: 'p2', resource: 'flutter-builder', steps: [{ ...step('a'), needs: ['c'] }, step('b'), step('c')] })
        .expect(400);
      expect(cycle.body.message).toBe('steps.0 ("a") is on a cycle of needs; steps.1 ("b") is on a cycle of needs; steps.2 ("c") is on a cycle of needs');
      const badNeeds = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [{ ...step('a'), needs: 'b' }] }).expect(400);
      expect(badNeeds.body.details).toEqual(expect.arrayContaining([expect.stringMatching(/^steps\.0\.needs must be an array/)]));
      const noSteps = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [] }).expect(400);
      expect(noSteps.body.message).toMatch(/^steps must contain at least 1 elements/);
      const badDriver = await http().post('/pipelines').send({ name: 'p2', resource: 'flutter-builder', steps: [step('a'), step('b', 'Bad.Driver')] }).expect(400);
      expect(badDriver.body.details).toEqual([expect.stringMatching(/^steps\.1\.driver must be lowercase letters/)]);
      const badOptions = await http()
        .post('/pipelines')
        .send({ name: 'p2', resource: 'flutter-builder', steps: [{ ...step('a'), timeout: 0, retries: 'x', always: 'yes' }] })
        .expect(400);
      expect(badOptions.body.details).toEqual(
        expect.arrayContaining([expect.stringMatching(/^steps\.0\.timeout /), expect.stringMatching(/^steps\.0\.retries /), expect.stringMatching(/^steps\.0\.always /)]),
      );
      const noDefinition = await http().post('/pipelines').send({ name: 'p2', resource: 'no-such-type', steps: [step('a')] }).expect(400);
      expect(noDefinition.body.message).toBe('resource definition "no-such-type" does not exist');
      const everything = await http().post('/pipelines').send({ name: 'P 2' }).expect(400);
      expect(everything.body.details).toEqual(
        expect.arrayContaining([expect.stringMatching(/^name /), expect.stringMatching(/^resource /), expect.stringMatching(/^steps /)]),
      );
      expect(await storedState(gw.url)).toEqual(before);
    });

    it('replaces a pipeline with PUT (If-Match honoured) and deletes it', async () => {
      const p = { name: 'short', resource: 'flutter-builder', steps: [{ id: 'only', name: 'only', driver: 'builder', timeout: 60, retries: 2, config: { cmd: 'make' } }] };
      const created = await http().post('/pipelines').send(p).expect(201);
      const put = await http()
        .put('/pipelines/short')
        .set('If-Match', created.headers.etag)
        .send({ ...p, description: 'v2' })
        .expect(200);
      expect(put.body).toMatchObject({ description: 'v2', steps: p.steps, createdAt: created.body.createdAt });
      await http().put('/pipelines/short').set('If-Match', created.headers.etag).send({ ...p, description: 'v3' }).expect(409);
      await http().delete('/pipelines/short').set('If-Match', created.headers.etag).expect(409);
      expect((await http().get('/pipelines/short')).body.description).toBe('v2');
      await http().put('/pipelines/short').send({ ...p, steps: [{ id: 'x', name: 'x', driver: 'builder' }, { id: 'x', name: 'y', driver: 'builder' }] }).expect(400);
      await http().delete('/pipelines/short').set('If-Match', put.headers.etag).expect(204);
      await http().get('/pipelines/short').expect(404);
      await http().put('/pipelines/short').send(p).expect(404);
    });
  });

  describe('resources', () => {
    it('creates a resource without a pipeline: version 1, no run', async () => {
      const res = await http().post('/resources').send({ name: 'plain', resource: 'flutter-builder', spec: { repository: 'file:///srv/plain.git' } }).expect(201);
      expect(res.body).toEqual({ name: 'plain', message: expect.stringContaining('created'), version: 1 });
      const got = await http().get('/resources/flutter-builder/plain').expect(200);
      expect(got.body).toMatchObject({ name: 'plain', resource: 'flutter-builder', spec: { repository: 'file:///srv/plain.git' }, metadata: {}, version: 1 });
      expect(got.body.runid).toBeUndefined();
      expect(got.headers.etag).toBe('"1"');
      await http().post('/resources').send({ name: 'plain', resource: 'flutter-builder', spec: { repository: 'x' } }).expect(409);
    });

    it('creates the tutorial resource with a run, and keeps every version of it', async () => {
      const created = await http().post('/resources').send(tutorial.resource).expect(201);
      expect(created.body).toEqual({ name: 'build-app', runid: expect.stringMatching(/^[0-9a-z]{26}$/), message: expect.any(String), version: 1 });
      const runids = [created.body.runid];
      for (let n = 1; n <= 3; n++) {
        const put = await http()
          .put('/resources/flutter-builder/build-app')
          .send({ spec: { repository: 'file:///srv/app.git', env: [{ name: 'N', value: String(n) }] }, metadata: { n } })
          .expect(200);
        expect(put.body).toEqual({ name: 'build-app', runid: expect.stringMatching(/^[0-9a-z]{26}$/), message: expect.any(String), version: n + 1 });
        runids.push(put.body.runid);
      }
      expect(new Set(runids).size).toBe(4);
      for (let v = 1; v <= 4; v++) {
        const res = await http().get(`/resources/flutter-builder/build-app/${v}`).expect(200);
        expect(res.body).toMatchObject({ version: v, pipeline: 'flutter-pipeline', runid: runids[v - 1] });
        expect(res.body.spec.env).toEqual(v === 1 ? [] : [{ name: 'N', value: String(v - 1) }]);
      }
      const latest = await http().get('/resources/flutter-builder/build-app').expect(200);
      expect(latest.body.version).toBe(4);
      expect(latest.headers.etag).toBe('"4"');
      const runs = await http().get('/runs?resource=build-app').expect(200);
      expect(runs.body.map((r: { id: string }) => r.id)).toEqual([...runids].reverse());
      await http().get('/resources/flutter-builder/build-app/5').expect(404);
      for (const bad of ['0', '-1', '1.5', 'one', '99999999999']) await http().get(`/resources/flutter-builder/build-app/${bad}`).expect(400);
    });

    it('honours If-Match on PUT and DELETE (the version is the ETag)', async () => {
      const before = await storedState(gw.url);
      const stale = await http().put('/resources/flutter-builder/build-app').set('If-Match', '"2"').send({ spec: { repository: 'y' } }).expect(409);
      expect(stale.body.message).toBe('resource "build-app" is at version 4, not 2');
      await http().delete('/resources/flutter-builder/build-app').set('If-Match', '"3"').expect(409);
      expect(await storedState(gw.url)).toEqual(before);
      const ok = await http().put('/resources/flutter-builder/build-app').set('If-Match', '"4"').send({ spec: { repository: 'z' }, pipeline: null }).expect(200);
      // pipeline: null drops the pipeline: no run for this version; metadata is kept.
      expect(ok.body).toEqual({ name: 'build-app', message: expect.any(String), version: 5 });
      const v5 = await http().get('/resources/flutter-builder/build-app/5').expect(200);
      expect(v5.body.pipeline).toBeUndefined();
      expect(v5.body.metadata).toEqual({ n: 3 });
    });

    it('numbers concurrent PUTs without If-Match as consecutive versions', async () => {
      const puts = await Promise.all([1, 2, 3, 4].map((n) => http().put('/resources/flutter-builder/plain').send({ spec: { repository: `r${n}` } })));
      expect(puts.map((p) => p.status)).toEqual([200, 200, 200, 200]);
      expect(puts.map((p) => p.body.version).sort()).toEqual([2, 3, 4, 5]);
      const repos = new Set<string>();
      for (let v = 2; v <= 5; v++) repos.add((await http().get(`/resources/flutter-builder/plain/${v}`).expect(200)).body.spec.repository);
      expect(repos).toEqual(new Set(['r1', 'r2', 'r3', 'r4']));
    });

    it('lists the latest versions, all or by type', async () => {
      await http().post('/resource-definitions').send({ name: 'other-type', schema: {} }).expect(201);
      await http().post('/resources').send({ name: 'plain', resource: 'other-type', spec: { anything: true } }).expect(201);
      const byType = await http().get('/resources?resource=flutter-builder').expect(200);
      expect(byType.body.map((r: { name: string; version: number }) => [r.name, r.version])).toEqual([['build-app', 5], ['plain', 5]]);
      const all = await http().get('/resources').expect(200);
      expect(all.body.map((r: { resource: string; name: string }) => `${r.resource}/${r.name}`)).toEqual(['flutter-builder/build-app', 'flutter-builder/plain', 'other-type/plain']);
      await http().get('/resources?resource=Bad.Type').expect(400);
    });

    it('refuses to delete a definition or pipeline in use (409, naming the users)', async () => {
      const before = await storedState(gw.url);
      const def = await http().delete('/resource-definitions/flutter-builder').expect(409);
      expect(def.body.message).toBe('resource definition "flutter-builder" is still used by pipeline(s) flutter-pipeline and resource(s) build-app, plain; delete them first');
      // build-app's latest version has no pipeline any more; give it one again.
      await http().put('/resources/flutter-builder/build-app').send({ spec: { repository: 'z' }, pipeline: 'flutter-pipeline' }).expect(200);
      const pipe = await http().delete('/pipelines/flutter-pipeline').expect(409);
      expect(pipe.body.message).toMatch(/^pipeline "flutter-pipeline" is still used by resource\(s\) build-app;/);
      const after = await storedState(gw.url);
      expect(after.definitions).toEqual(before.definitions);
      expect(after.pipelines).toEqual(before.pipelines);
    });

    it('deletes a resource with all its versions (204); its runs stay', async () => {
      const runsBefore = (await http().get('/runs?limit=500').expect(200)).body.length;
      await http().delete('/resources/other-type/plain').set('If-Match', '"1"').expect(204);
      await http().get('/resources/other-type/plain').expect(404);
      await http().get('/resources/other-type/plain/1').expect(404);
      await http().delete('/resources/other-type/plain').expect(404);
      await http().put('/resources/other-type/plain').send({ spec: {} }).expect(404);
      // The name is free again and numbering starts over.
      expect((await http().post('/resources').send({ name: 'plain', resource: 'other-type', spec: {} }).expect(201)).body.version).toBe(1);
      expect((await http().get('/runs?limit=500').expect(200)).body.length).toBe(runsBefore);
    });
  });

  describe('bad input: a precise 4xx and nothing stored changes', () => {
    let before: Record<string, unknown>;
    beforeEach(async () => {
      before = await storedState(gw.url);
    });
    afterEach(async () => {
      expect(await storedState(gw.url)).toEqual(before);
    });

    it('invalid JSON → 400', async () => {
      for (const path of ['/resources', '/resource-definitions', '/pipelines', '/resource-definitions/apply']) {
        const res = await http().post(path).set('Content-Type', 'application/json').send('{"name": "x", "spec": {').expect(400);
        expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/^request body is not valid JSON: /) });
      }
      await http().put('/resources/flutter-builder/build-app').set('Content-Type', 'application/json').send('{spec:1}').expect(400);
    });

    it('a spec that fails its schema → 400 naming every failing field', async () => {
      const res = await http()
        .post('/resources')
        .send({ name: 'bad-spec', resource: 'flutter-builder', pipeline: 'flutter-pipeline', spec: { env: [{ name: 1 }, 'x'] } })
        .expect(400);
      expect(res.body.details).toEqual(
        expect.arrayContaining([
          "spec must have required property 'repository'",
          "spec/env/0 must have required property 'value'",
          'spec/env/0/name must be string',
          'spec/env/1 must be object',
        ]),
      );
      expect(res.body.message).toMatch(/^spec does not match resource definition "flutter-builder": /);
      const put = await http().put('/resources/flutter-builder/build-app').send({ spec: { repository: 42 } }).expect(400);
      expect(put.body.details).toEqual(['spec/repository must be string']);
    });

    it('a body that fails the DTO → 400 naming every field', async () => {
      const res = await http().post('/resources').send({ name: 'Build App', resource: 7, spec: 'x', metadata: [] }).expect(400);
      expect(res.body.details).toEqual(
        expect.arrayContaining([expect.stringMatching(/^name /), expect.stringMatching(/^resource /), 'spec must be an object', 'metadata must be an object']),
      );
      await http().put('/resources/flutter-builder/build-app').send({}).expect(400);
      await http().post('/resources').set('Content-Type', 'application/json').send('[1,2]').expect(400);
    });

    it('an unknown pipeline or resource definition → 400', async () => {
      const noPipeline = await http().post('/resources').send({ ...tutorial.resource, name: 'x1', pipeline: 'no-such-pipeline' }).expect(400);
      expect(noPipeline.body.message).toBe('pipeline "no-such-pipeline" does not exist');
      const noType = await http().post('/resources').send({ ...tutorial.resource, name: 'x1', resource: 'no-such-type' }).expect(400);
      expect(noType.body.message).toBe('resource definition "no-such-type" does not exist');
      // Both unknown (the two are read side by side): the definition is what is reported, every time.
      for (let i = 0; i < 5; i++) {
        const neither = await http().post('/resources').send({ ...tutorial.resource, name: 'x1', resource: 'no-such-type', pipeline: 'no-such-pipeline' }).expect(400);
        expect(neither.body.message).toBe('resource definition "no-such-type" does not exist');
      }
      await http().put('/resources/flutter-builder/build-app').send({ spec: { repository: 'a' }, pipeline: 'no-such-pipeline' }).expect(400);
    });

    it('a pipeline whose resource type does not match → 400', async () => {
      const res = await http().post('/resources').send({ name: 'x2', resource: 'other-type', pipeline: 'flutter-pipeline', spec: {} }).expect(400);
      expect(res.body.message).toBe('pipeline "flutter-pipeline" builds resources of type "flutter-builder", not "other-type"');
      await http().put('/resources/other-type/plain').send({ spec: {}, pipeline: 'flutter-pipeline' }).expect(400);
      await http().put('/resources/flutter-builder/build-app').send({ spec: { repository: 'a' }, resource: 'other-type' }).expect(400);
    });

    it('an oversized body → 413', async () => {
      const big = { ...tutorial.resource, name: 'big', spec: { repository: 'x', env: [{ name: 'BLOB', value: 'x'.repeat(gw.config.http.bodyLimitBytes) }] } };
      const res = await http().post('/resources').send(big).expect(413);
      expect(res.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: `request body is larger than the limit of ${gw.config.http.bodyLimitBytes} bytes` });
      await http().put('/resources/flutter-builder/build-app').send({ spec: big.spec }).expect(413);
      await http().post('/resource-definitions').send({ name: 'big', schema: { description: 'x'.repeat(gw.config.http.bodyLimitBytes) } }).expect(413);
    });

    it('names with path characters → 400, in bodies and paths', async () => {
      for (const name of ['../etc', 'a/b', 'a.b', 'A', '-a', 'a'.repeat(64), '*', '>']) {
        const res = await http().post('/resources').send({ ...tutorial.resource, name }).expect(400);
        expect(res.body.details).toEqual([expect.stringMatching(/^name must be lowercase letters/)]);
      }
      for (const path of [
        '/resources/flutter-builder/..%2F..%2Fbuild-app',
        '/resources/flutter-builder/a.b',
        '/resources/flutter-builder/build-app%2E1',
        '/resources/flutter.builder/build-app',
        '/resources/flutter-builder/%3E',
        '/resources/flutter-builder/build-app/..%2F1',
        '/resource-definitions/..%2Fflutter-builder',
        '/resource-definitions/a.b',
        '/pipelines/flutter-pipeline%2F..',
        '/pipelines/*',
      ]) {
        const res = await http().get(path);
        expect([path, res.status]).toEqual([path, 400]);
        expect(res.body.statusCode).toBe(400);
      }
      await http().put('/resources/flutter-builder/a.b').send({ spec: { repository: 'x' } }).expect(400);
      await http().delete('/resources/flutter-builder/a.b').expect(400);
      await http().delete('/resource-definitions/a.b').expect(400);
      await http().put('/pipelines/a.b').send(tutorial.pipeline).expect(400);
      await http().delete('/pipelines/..%2F..').expect(400);
    });

    it('a schema that is not valid JSON Schema → 400', async () => {
      const res = await http().post('/resource-definitions/apply').send({ ...tutorial.definition, schema: { type: 'object', required: 'repository' } }).expect(400);
      expect(res.body.message).toMatch(/^schema is not a valid JSON Schema: /);
      await http().post('/resource-definitions').send({ name: 'x3', schema: 'not an object' }).expect(400);
    });

    it('a malformed If-Match → 400', async () => {
      await http().put('/resources/flutter-builder/build-app').set('If-Match', 'version-4').send({ spec: { repository: 'a' } }).expect(400);
      await http().delete('/resources/flutter-builder/build-app').set('If-Match', '"0"').expect(400);
    });
  });
});
