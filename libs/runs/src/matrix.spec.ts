import type { PipelineStep } from '@conveyor/contracts';
import { expandMatrices, matrixCombinations, matrixEnv } from './matrix';
import { planGraph, resolveNeeds } from './graph';

describe('matrixCombinations', () => {
  it('is the product of the axes, in order, less what exclude matches, plus include entries not already there', () => {
    expect(matrixCombinations({ os: ['linux', 'mac'], node: [18, 20] }).combinations).toEqual([
      { os: 'linux', node: 18 },
      { os: 'linux', node: 20 },
      { os: 'mac', node: 18 },
      { os: 'mac', node: 20 },
    ]);
    expect(matrixCombinations({ os: ['linux', 'mac'], node: [18, 20], exclude: [{ os: 'mac', node: 18 }], include: [{ os: 'win', node: 20 }, { os: 'linux', node: 18 }] }).combinations).toEqual([
      { os: 'linux', node: 18 },
      { os: 'linux', node: 20 },
      { os: 'mac', node: 20 },
      { os: 'win', node: 20 },
    ]);
  });

  it('refuses 10,000 combinations without building them, and bad axes, with what is wrong', () => {
    const big = matrixCombinations({ a: Array.from({ length: 100 }, (_, i) => i), b: Array.from({ length: 100 }, (_, i) => i) });
    expect(big.problem).toBe('matrix has 10000 combinations; at most 64');
    expect(matrixCombinations({ a: Array.from({ length: 13 }, (_, i) => i), b: [1, 2, 3, 4, 5] }).problem).toBe('matrix has 65 combinations; at most 64');
    expect(matrixCombinations({ 'bad-axis': [1] }).problem).toMatch(/axis "bad-axis" is not a name/);
    expect(matrixCombinations({ a: [] }).problem).toMatch(/axis "a" must be a non-empty list/);
    expect(matrixCombinations({ a: [{ x: 1 }] as never }).problem).toMatch(/must be a non-empty list of strings, numbers or booleans/);
    expect(matrixCombinations({ a: [1], exclude: [{ a: 1 }] }).problem).toBe('matrix has no combination left after exclude');
  });
});

describe('expandMatrices', () => {
  const steps: PipelineStep[] = [
    { id: 'build', name: 'Build', driver: 'b' },
    { id: 'test', name: 'Test', driver: 'b', matrix: { node: [18, 20, 22] }, maxParallel: 2, config: { commands: ['npm test'] } },
    { id: 'report', name: 'Report', driver: 'b' },
  ];

  it('makes one step per combination, named from its values, each needing what the matrix step needed; later steps need them all', () => {
    const { steps: out, problems } = expandMatrices(steps);
    expect(problems).toEqual([]);
    expect(out.map((s) => [s.id, s.name, s.needs, s.config?.matrix])).toEqual([
      ['build', 'Build', [], undefined],
      ['test-1', 'Test (node=18)', ['build'], { node: 18 }],
      ['test-2', 'Test (node=20)', ['build'], { node: 20 }],
      ['test-3', 'Test (node=22)', ['build'], { node: 22 }],
      ['report', 'Report', ['test-1', 'test-2', 'test-3'], undefined],
    ]);
    expect(out[1]).toMatchObject({ matrixOf: 'test', maxParallel: 2, config: { commands: ['npm test'] } });
    expect(out[1].matrix).toBeUndefined();
  });

  it('leaves a pipeline without a matrix as it is (a line stays a line)', () => {
    const line = [steps[0], steps[2]];
    expect(expandMatrices(line).steps).toEqual(line);
  });

  it('names an expansion that takes another step\'s id', () => {
    expect(expandMatrices([...steps, { id: 'test-2', name: 'x', driver: 'b' }]).problems).toEqual([{ stepId: 'test', message: 'its expansion "test-2" has the id of another step' }]);
  });

  it('runs at most maxParallel expansions at once: the next is readied when one ends', () => {
    const out = expandMatrices(steps).steps;
    const { needs } = resolveNeeds(out);
    expect(planGraph(out, needs, ['succeeded', 'waiting', 'waiting', 'waiting', 'waiting'], { failFast: true }).ready).toEqual([1, 2]);
    expect(planGraph(out, needs, ['succeeded', 'succeeded', 'running', 'waiting', 'waiting'], { failFast: true }).ready).toEqual([3]);
    expect(planGraph(out, needs, ['succeeded', 'running', 'running', 'waiting', 'waiting'], { failFast: true }).ready).toEqual([]);
  });
});

describe('matrixEnv', () => {
  it('gives a matrix step\'s values as MATRIX_<AXIS>', () => {
    expect(matrixEnv({ matrix: { node: 20, os: 'linux' } })).toEqual([{ name: 'MATRIX_NODE', value: '20' }, { name: 'MATRIX_OS', value: 'linux' }]);
    expect(matrixEnv({})).toEqual([]);
  });
});
