import type { TriggerOrigin } from '@conveyor/contracts/models';
import { artifactPath, hookUrl, originOf, refName, shortCommit } from './origin';

describe('originOf', () => {
  const trigger: TriggerOrigin = { trigger: 'gh', source: 'generic', event: 'push', delivery: 'd1', repository: 'file:///r', ref: 'refs/heads/main', commit: 'a'.repeat(40) };

  it('a webhook version names its trigger, even when its metadata also names a schedule', () => {
    expect(originOf({ trigger, metadata: { schedule: 'nightly' } })).toEqual({ kind: 'trigger', origin: trigger });
  });

  it("a schedule's tick: the schedule, its due time, and whether it caught up a missed one", () => {
    expect(originOf({ metadata: { schedule: 'nightly', tick: 'nightly:2026-01-01T00:00:00.000Z', tickAt: '2026-01-01T00:00:00.000Z' } })).toEqual({
      kind: 'schedule',
      schedule: 'nightly',
      tickAt: '2026-01-01T00:00:00.000Z',
      catchUp: false,
    });
    expect(originOf({ metadata: { schedule: 'nightly', catchUp: true } })).toEqual({ kind: 'schedule', schedule: 'nightly', catchUp: true });
  });

  it('a version a client wrote has no origin; a metadata schedule that is not a name is ignored', () => {
    expect(originOf({ metadata: {} })).toBeUndefined();
    expect(originOf({ metadata: { schedule: 3 } })).toBeUndefined();
    expect(originOf({ metadata: { schedule: '' } })).toBeUndefined();
  });
});

describe('refs, commits, hook URLs and artifact paths', () => {
  it('names branches and tags without their prefix, and leaves other refs alone', () => {
    expect(refName('refs/heads/feature/x')).toBe('feature/x');
    expect(refName('refs/tags/v1.2')).toBe('v1.2');
    expect(refName('refs/pull/4/head')).toBe('refs/pull/4/head');
  });

  it('abbreviates a commit id to 7 digits and leaves anything else whole', () => {
    expect(shortCommit('0123456789abcdef0123456789abcdef01234567')).toBe('0123456');
    expect(shortCommit('HEAD')).toBe('HEAD');
  });

  it('makes the hook path absolute on the page origin', () => {
    expect(hookUrl('http://127.0.0.1:8080', '/hooks/gh')).toBe('http://127.0.0.1:8080/hooks/gh');
    expect(hookUrl('https://ci.example', '/hooks/a-b_c')).toBe('https://ci.example/hooks/a-b_c');
  });

  it('encodes each segment of an artifact name and keeps its slashes', () => {
    expect(artifactPath('01j', 'out/sub dir/a#1.txt')).toBe('/runs/01j/artifacts/out/sub%20dir/a%231.txt');
  });
});
