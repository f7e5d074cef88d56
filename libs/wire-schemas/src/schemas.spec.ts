import { Subjects } from '@conveyor/contracts';
import { wireSchemaOf, type WireSchemaName } from './wire-schemas';

// The generator is a plain Node script (npm run schemas runs it without a build).
const generator = require('../../../scripts/generate-schemas.js') as {
  WIRE_TYPES: Array<{ name: string; type: string }>;
  generateSchemas(): Record<string, string>;
  storedSchemas(): Record<string, string>;
};

describe('schemas/ (generated from libs/contracts)', () => {
  it('is what the TypeScript contracts generate now', () => {
    const fresh = generator.generateSchemas();
    const stored = generator.storedSchemas();
    const stale = Object.keys({ ...fresh, ...stored }).filter((f) => fresh[f] !== stored[f]).sort();
    if (stale.length) {
      throw new Error(`schemas/ differs from the contracts in ${stale.join(', ')}: run \`npm run schemas\` and commit schemas/ (never edit a schema by hand: change the type in libs/contracts)`);
    }
    expect(Object.keys(stored).length).toBe(generator.WIRE_TYPES.length);
  }, 30_000);

  it('has a schema for every kind of subject the wire map names, and no other', () => {
    const s = new Subjects();
    const run = '01jbcdefghjkmnpqrstvwxyz12';
    const mapped = new Set<WireSchemaName | undefined>(
      [
        s.work(run, 'build', 'builder'),
        s.stepRecord(run, 'build', 'claim'),
        s.stepStarted(run, 'build'),
        s.stepRecord(run, 'build', 'done'),
        s.runEnd(run),
        s.log(run, 'builder', 'build'),
        s.logsEnd(run),
        s.cancel(run),
        `$KV.${s.bucket('cancels')}.${run}`,
        `$KV.${s.bucket('agents')}.agent-1`,
        s.deadLetter('builder'),
        s.ticks('nightly'),
        s.report(run, 'status', 'start'),
      ].map((subject) => wireSchemaOf(s, subject)),
    );
    expect([...mapped].sort()).toEqual(generator.WIRE_TYPES.map((t) => t.name).sort());
  });
});
