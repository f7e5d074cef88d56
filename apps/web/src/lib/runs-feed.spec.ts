import type { Run, RunStatus } from '@conveyor/contracts/models';
import { mergeRun } from './runs-feed';

const run = (id: string, status: RunStatus = 'running', pipeline = 'p'): Run =>
  ({ id, status, pipeline: { name: pipeline, resource: 'thing', steps: [] }, resource: { type: 'thing', name: 'r', version: 1 }, steps: [], cancelRequested: false, createdAt: '' }) as Run;

describe('mergeRun', () => {
  const first = { firstPage: true, limit: 3 };

  it('updates a run in place and puts a new one at its place by id', () => {
    const page = [run('c'), run('a')];
    expect(mergeRun(page, run('a', 'succeeded'), {}, first).map((r) => [r.id, r.status])).toEqual([
      ['c', 'running'],
      ['a', 'succeeded'],
    ]);
    expect(mergeRun(page, run('d'), {}, first).map((r) => r.id)).toEqual(['d', 'c', 'a']);
    expect(mergeRun(page, run('b'), {}, first).map((r) => r.id)).toEqual(['c', 'b', 'a']);
  });

  it('keeps a full page full: the oldest drops off, an older run does not enter', () => {
    const page = [run('e'), run('d'), run('c')];
    expect(mergeRun(page, run('f'), {}, first).map((r) => r.id)).toEqual(['f', 'e', 'd']);
    expect(mergeRun(page, run('a'), {}, first)).toBe(page);
  });

  it('follows the filter: a run that stops matching leaves, one that does not match never enters', () => {
    const page = [run('b', 'running'), run('a', 'running')];
    expect(mergeRun(page, run('b', 'succeeded'), { status: 'running' }, first).map((r) => r.id)).toEqual(['a']);
    expect(mergeRun(page, run('c', 'running', 'other'), { pipeline: 'p' }, first)).toBe(page);
  });

  it('on an older page only updates what it shows', () => {
    const page = [run('b'), run('a')];
    expect(mergeRun(page, run('z'), {}, { firstPage: false, limit: 3 })).toBe(page);
    expect(mergeRun(page, run('a', 'failed'), {}, { firstPage: false, limit: 3 })[1].status).toBe('failed');
  });
});
