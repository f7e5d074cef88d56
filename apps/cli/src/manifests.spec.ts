import { contains, triggerAsStored } from './commands/apply';
import { parseSet } from './commands/run';
import { CliError } from './errors';
import { readManifests } from './manifests';
import { table } from './output';

describe('manifests', () => {
  it('reads several documents with their lines and kinds', () => {
    const text = '# two\nkind: ResourceDefinition\nname: a\nschema: {type: object}\n---\nkind: pipeline\nname: p\nresource: a\nsteps:\n  - id: x\n    driver: d\n';
    const [def, pipe] = readManifests('m.yaml', text);
    expect(def).toMatchObject({ kind: 'ResourceDefinition', name: 'a', line: 2, body: { name: 'a', schema: { type: 'object' } } });
    expect(pipe).toMatchObject({ kind: 'Pipeline', name: 'p', line: 6 });
    expect(pipe.body.kind).toBeUndefined();
    expect(pipe.lineOf('steps.0.driver')).toBe(11);
    expect(pipe.lineOf('steps.3.driver')).toBe(10);
  });

  it('reads a Trigger, in any case', () => {
    const [t] = readManifests('t.yaml', '# hook\nkind: trigger\nname: push\nsource: github\nsecret: s\nresource: a\npipeline: p\n');
    expect(t).toMatchObject({ kind: 'Trigger', name: 'push', line: 2, body: { name: 'push', source: 'github', secret: 's', resource: 'a', pipeline: 'p' } });
  });

  it('names the line of bad YAML, a missing kind and an unknown kind', () => {
    const err = (text: string) => {
      try {
        readManifests('m.yaml', text);
      } catch (e) {
        expect(e).toBeInstanceOf(CliError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err('kind: Pipeline\nname: [unclosed\n')).toMatch(/^m\.yaml:\d: invalid YAML/);
    expect(err('\n\nname: x\n')).toBe('m.yaml:3: "kind" is missing (ResourceDefinition, Pipeline, Resource, Schedule or Trigger)');
    expect(err('name: x\nkind: Gadget\n')).toMatch(/^m\.yaml:2: unknown kind "Gadget"/);
    expect(err('- a\n- b\n')).toMatch(/^m\.yaml:1: a manifest must be a mapping/);
  });

  it('compares what the manifest says with what is stored', () => {
    const stored = { name: 'p', description: '', steps: [{ id: 'a', driver: 'd', always: false, config: { x: 1 } }], createdAt: 'now' };
    expect(contains(stored, { name: 'p', steps: [{ id: 'a', driver: 'd', config: { x: 1 } }] })).toBe(true);
    expect(contains(stored, { name: 'p', steps: [{ id: 'a', driver: 'd', config: {} }] })).toBe(false);
    expect(contains(stored, { name: 'p', steps: [{ id: 'a', driver: 'e' }] })).toBe(false);
    expect(contains(stored, { name: 'p', steps: [] })).toBe(false);
    expect(contains({ spec: { a: 1, b: 2 } }, { spec: { a: 1 } })).toBe(false);
  });

  it("compares a Trigger as the gateway stores it: its defaults count as said, a field left out counts as removed", () => {
    // What POST /triggers stores for {name, source, secret, branches: [main], resource, pipeline}.
    const stored = { name: 't', source: 'github', secret: 's', events: ['push'], branches: ['main'], resource: 'a', pipeline: 'p', resourceName: 't', spec: {}, createdAt: 'now', updatedAt: 'now' };
    const body = { name: 't', source: 'github', secret: 's', resource: 'a', pipeline: 'p' };
    expect(contains(stored, triggerAsStored({ ...body, branches: ['main'] }))).toBe(true);
    expect(contains(stored, triggerAsStored({ ...body, branches: ['main'], events: ['push', 'push'], resourceName: 't' }))).toBe(true);
    expect(contains(stored, triggerAsStored(body))).toBe(false);
    expect(contains({ ...stored, branches: undefined }, triggerAsStored({ ...body, branches: [] }))).toBe(true);
    expect(contains(stored, triggerAsStored({ ...body, branches: ['main'], repository: 'o/r' }))).toBe(false);
    expect(contains({ ...stored, repository: 'o/r' }, triggerAsStored({ ...body, branches: ['main'], repository: ' o/r ' }))).toBe(true);
    const status = { api: 'https://api.github.com', token: 'tok', context: 'ci/x' };
    expect(contains({ ...stored, status }, triggerAsStored({ ...body, branches: ['main'], status }))).toBe(true);
    expect(contains({ ...stored, status }, triggerAsStored({ ...body, branches: ['main'], status: { api: status.api, token: 'tok' } }))).toBe(false);
    expect(contains({ ...stored, status }, triggerAsStored({ ...body, branches: ['main'] }))).toBe(false);
    // A wrong type is kept as written, so the gateway is asked and refuses it.
    expect(triggerAsStored({ ...body, events: 'push' }).events).toBe('push');
  });

  it('parses --set values as JSON when they parse', () => {
    expect(parseSet('spec.count=3')).toEqual({ root: 'spec', path: ['count'], value: 3 });
    expect(parseSet('spec.a.b=hello world')).toEqual({ root: 'spec', path: ['a', 'b'], value: 'hello world' });
    expect(parseSet('metadata.tags=["x"]')).toEqual({ root: 'metadata', path: ['tags'], value: ['x'] });
    expect(() => parseSet('count=3')).toThrow(CliError);
    expect(() => parseSet('spec.__proto__.x=1')).toThrow(CliError);
  });

  it('aligns table columns', () => {
    expect(table(['A', 'BB'], [['xxx', 'y'], [undefined, 'z']])).toBe('A     BB\nxxx   y\n-     z\n');
  });
});
