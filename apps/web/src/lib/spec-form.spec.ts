import { Validator } from '@cfworker/json-schema';
import { parseField, serverFieldErrors, specFields, validatorFieldErrors } from './spec-form';

const schema = {
  type: 'object',
  required: ['repository', 'ref'],
  properties: {
    repository: { type: 'string', description: 'clone URL' },
    ref: { type: 'string' },
    jobs: { type: 'integer' },
    verbose: { type: 'boolean' },
    mode: { enum: ['fast', 'full'] },
    env: { type: 'object' },
  },
};

describe('the trigger form', () => {
  it('makes a field per property of the spec', () => {
    expect(specFields(schema).map((f) => [f.name, f.kind, f.required])).toEqual([
      ['repository', 'string', true],
      ['ref', 'string', true],
      ['jobs', 'integer', false],
      ['verbose', 'boolean', false],
      ['mode', 'enum', false],
      ['env', 'json', false],
    ]);
    expect(specFields({ type: 'object' })).toEqual([]);
  });

  it('puts the browser\'s own check beside the fields', () => {
    const out = new Validator(schema, '7', false).validate({ repository: 3, jobs: 1.5 });
    const errors = validatorFieldErrors(out.errors, specFields(schema).map((f) => f.name));
    expect(Object.keys(errors).sort()).toEqual(['jobs', 'ref', 'repository']);
    expect(errors.ref).toEqual(['is required']);
    expect(errors.repository[0]).toMatch(/Expected "string"/);
  });

  it('puts the server\'s 400 details beside the fields, and the rest above them', () => {
    const errors = serverFieldErrors(['spec/repository must be string', "spec must have required property 'ref'", 'spec/unknown/x must be number', 'pipeline "x" not found'], ['repository', 'ref']);
    expect(errors).toEqual({ repository: ['must be string'], ref: ['is required'], '': ['spec/unknown/x must be number', 'pipeline "x" not found'] });
  });

  it('reads a field\'s text as its kind of value', () => {
    expect(parseField('integer', '4')).toEqual({ value: 4 });
    expect(parseField('number', 'x').error).toMatch(/not a number/);
    expect(parseField('json', '{"a":1}')).toEqual({ value: { a: 1 } });
    expect(parseField('json', '{').error).toMatch(/not valid JSON/);
    expect(parseField('string', '')).toEqual({});
  });
});
