import { assertServerVersion, NATS_SERVER_MIN_VERSION, NatsServerTooOldError, parseServerVersion, serverVersionProblem } from './server-version';

describe('nats-server version check', () => {
  it('has 2.11.0 as the minimum', () => {
    expect(NATS_SERVER_MIN_VERSION).toBe('2.11.0');
  });

  it('accepts the minimum and anything newer', () => {
    for (const v of ['2.11.0', '2.11.1', '2.11.10', '2.12.0', '2.15.1', '3.0.0', 'v2.15.1', '2.12.0+build.7', '2.11']) {
      expect(serverVersionProblem(v)).toBeUndefined();
    }
  });

  it('refuses anything older, with the reason and what to do', () => {
    expect(serverVersionProblem('2.9.10')).toBe(
      'nats-server 2.9.10 is too old: Conveyor needs 2.11.0 or newer (fenced run transitions use the wildcard expected-sequence check and message TTLs); install the current one (deploy/local/setup.sh does)',
    );
    for (const v of ['2.10.29', '2.10.99', '2.9.25', '1.99.99', '0.0.1']) expect(serverVersionProblem(v)).toMatch(/is too old: Conveyor needs 2\.11\.0 or newer/);
  });

  it('compares numerically, not as text', () => {
    expect(serverVersionProblem('2.9.0', undefined, '2.10.0')).toMatch(/too old/);
    expect(serverVersionProblem('2.10.0', undefined, '2.9.0')).toBeUndefined();
    expect(serverVersionProblem('2.11.10', undefined, '2.11.9')).toBeUndefined();
  });

  it('takes a pre-release of the minimum for older than the minimum, and one of a later version for newer', () => {
    expect(serverVersionProblem('2.11.0-RC.2')).toMatch(/too old/);
    expect(serverVersionProblem('2.12.0-RC.1')).toBeUndefined();
  });

  it('names the server when given', () => {
    expect(serverVersionProblem('2.10.4', '127.0.0.1:4222')).toMatch(/^nats-server 2\.10\.4 at 127\.0\.0\.1:4222 is too old: /);
  });

  it('refuses a server whose version cannot be read', () => {
    expect(serverVersionProblem(undefined)).toMatch(/^nats-server \(no version reported\) reports no version Conveyor can read: Conveyor needs 2\.11\.0/);
    expect(serverVersionProblem('banana')).toMatch(/^nats-server banana reports no version/);
  });

  it('throws a NatsServerTooOldError carrying the versions', () => {
    expect(() => assertServerVersion('2.15.1')).not.toThrow();
    let err: unknown;
    try {
      assertServerVersion('2.9.10', 'nats.example:4222');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NatsServerTooOldError);
    expect(err).toMatchObject({ name: 'NatsServerTooOldError', version: '2.9.10', minimum: '2.11.0' });
    expect((err as Error).message).toMatch(/^nats-server 2\.9\.10 at nats\.example:4222 is too old/);
  });

  it('parses the forms nats-server reports', () => {
    expect(parseServerVersion('2.15.1')).toEqual({ core: [2, 15, 1], pre: undefined });
    expect(parseServerVersion('2.12.0-RC.3')).toEqual({ core: [2, 12, 0], pre: 'RC.3' });
    expect(parseServerVersion('')).toBeUndefined();
  });
});
