#!/usr/bin/env node
// JSON Schemas of every message on the wire (docs/protocol.md), generated from the TypeScript
// types in libs/contracts: the types are the one source, the files in schemas/ are checked in
// so that a driver in another language can use them. `npm run schemas` writes them;
// libs/wire-schemas/src/schemas.spec.ts fails when they differ from what this generates.
'use strict';
const { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { createGenerator } = require('ts-json-schema-generator');

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'schemas');

/** Each schema: its file (without `.schema.json`), the exported type it is made from, and where that travels. */
const WIRE_TYPES = [
  { name: 'step-message', type: 'StepMessage', where: '<prefix>.steps.<run>.<step>.<driver>.<machine> (runs stream): a step\'s work' },
  { name: 'step-record', type: 'StepRecord', where: '<prefix>.steps.<run>.<step>.claim|retry|release and <prefix>.events.<run>.<step>.started (runs stream)' },
  { name: 'step-done', type: 'StepDone', where: '<prefix>.steps.<run>.<step>.done (runs stream): how a step of a graph pipeline ended' },
  { name: 'run-end', type: 'RunEnd', where: '<prefix>.steps.<run>.end (runs stream): the run ended' },
  { name: 'log-line', type: 'LogLine', where: '<prefix>.logs.<run>.<driver>.<step> (logs stream)' },
  { name: 'logs-end', type: 'LogsEnd', where: '<prefix>.logs.<run>.end (logs stream): no more lines of the run will come' },
  { name: 'cancel-signal', type: 'CancelSignal', where: '<prefix>.control.<run>.cancel (core NATS, not stored)' },
  { name: 'cancels-entry', type: 'CancelsEntry', where: 'value of key <run> in KV bucket <prefix>-cancels (subject $KV.<prefix>-cancels.<run>)' },
  { name: 'agent-info', type: 'AgentInfo', where: 'value of key <agent> in KV bucket <prefix>-agents (subject $KV.<prefix>-agents.<agent>): an agent\'s heartbeat' },
  { name: 'dead-letter', type: 'DeadLetter', where: '<prefix>.dlq.<driver> (dead-letter stream)' },
  { name: 'schedule-tick', type: 'ScheduleTick', where: '<prefix>.ticks.<schedule> (ticks stream; gateways only)' },
  { name: 'report-job', type: 'ReportJob', where: '<prefix>.reports.<run>.<kind>.<which> (reports stream; gateways only)' },
];

/** Every schema, by file name, as the text to store (formatted, with a final newline). */
function generateSchemas() {
  const generator = createGenerator({
    // The files that declare the wire types (not the whole library: generation stays about a second).
    path: join(ROOT, 'libs/contracts/src/{messages,models}.ts'),
    tsconfig: join(ROOT, 'tsconfig.json'),
    type: '*',
    // Named types become definitions, so a schema reads like the contracts it comes from.
    expose: 'export',
    topRef: false,
    jsDoc: 'extended',
    // The schemas describe what this version sends: a field the type does not name is a violation.
    additionalProperties: false,
    // tsc checks the types (npm run typecheck); skipping it here keeps generation to about a second.
    skipTypeCheck: true,
    sortProps: true,
  });
  const out = {};
  for (const { name, type, where } of WIRE_TYPES) {
    const schema = generator.createSchema(type);
    const file = `${name}.schema.json`;
    const { $schema, ...rest } = schema;
    out[file] = `${JSON.stringify({ $schema, $id: file, title: type, $comment: `Generated from libs/contracts (${type}) by npm run schemas; do not edit. On the wire: ${where}.`, ...rest }, null, 2)}\n`;
  }
  return out;
}

/** The files now in schemas/, by name. */
function storedSchemas(dir = OUT) {
  const out = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.schema.json')) out[f] = readFileSync(join(dir, f), 'utf8');
  return out;
}

module.exports = { WIRE_TYPES, generateSchemas, storedSchemas, SCHEMAS_DIR: OUT };

if (require.main === module) {
  const schemas = generateSchemas();
  mkdirSync(OUT, { recursive: true });
  // A schema whose type left the list goes too.
  for (const f of readdirSync(OUT)) if (f.endsWith('.schema.json') && !(f in schemas)) rmSync(join(OUT, f));
  for (const [f, text] of Object.entries(schemas)) writeFileSync(join(OUT, f), text);
  console.log(`wrote ${Object.keys(schemas).length} schemas to ${OUT}`);
}
