import type { Run, StepRun } from '@conveyor/contracts';
import { graphTree } from './commands/describe';

const st = (id: string, needs: string[], status: StepRun['status'] = 'succeeded', extra: Partial<StepRun> = {}): StepRun => ({ id, name: id, driver: 'd', always: false, needs, status, attempts: 1, ...extra });

describe('conveyor describe run: the graph', () => {
  it('draws each step under the first step it needs, naming the others, with matrix values and carried-over steps', () => {
    const run = {
      steps: [
        st('start', []),
        st('test-1', ['start'], 'succeeded', { matrix: { node: 18 }, matrixOf: 'test' }),
        st('test-2', ['start'], 'failed', { matrix: { node: 20 }, matrixOf: 'test' }),
        st('lint', [], 'succeeded', { reusedFrom: 'r0' }),
        st('report', ['test-1', 'test-2', 'lint'], 'skipped'),
        st('stop', ['report'], 'succeeded', { always: true }),
      ],
    } as unknown as Run;
    expect(graphTree(run, false)).toBe(
      [
        '  start succeeded',
        '  ├─ test-1 succeeded  (node=18)',
        '  │  └─ report skipped  (also needs test-2, lint)',
        '  │     └─ stop succeeded  (always)',
        '  └─ test-2 failed  (node=20)',
        '  lint succeeded  (carried over from r0)',
        '',
      ].join('\n'),
    );
  });
});
