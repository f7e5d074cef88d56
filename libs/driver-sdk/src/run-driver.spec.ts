import { runDriver, type RunDriverOptions } from './run-driver';

// Refused before anything connects: these tests need no NATS (nothing listens on port 1).
const env = { CONVEYOR_NATS_URL: 'nats://127.0.0.1:1' };

describe('runDriver options', () => {
  it('refuses a driver name that cannot be a subject token', async () => {
    await expect(runDriver({ name: 'My.Driver', handle: async () => ({ success: true }), env })).rejects.toThrow(
      'runDriver: invalid driver name "My.Driver": lowercase letters, digits and "-"',
    );
  });

  it('refuses a missing handler and a bad concurrency', async () => {
    await expect(runDriver({ name: 'ok', env } as unknown as RunDriverOptions)).rejects.toThrow('runDriver: "handle" must be a function (ctx) => StepResult, not undefined');
    await expect(runDriver({ name: 'ok', handle: async () => ({ success: true }), concurrency: 0, env })).rejects.toThrow('"concurrency" must be a whole number of at least 1, not 0');
  });
});
