import { runStep, startNatsServer } from './local-run';

describe('startNatsServer and runStep refusals', () => {
  it('says which binary could not run and how to name another', async () => {
    await expect(startNatsServer({ bin: '/nonexistent/nats-server' })).rejects.toThrow(
      /^cannot run \/nonexistent\/nats-server: .*ENOENT.* \(set NATS_SERVER_BIN or put nats-server on PATH\)$/,
    );
  });

  it('says when the binary is not a nats-server that stays up', async () => {
    // `false` exits at once: the server never listens.
    await expect(startNatsServer({ bin: 'false', timeoutMs: 5_000 })).rejects.toThrow(/^false exited \(1\) before it listened/);
  });

  it('refuses a bad driver name before connecting', async () => {
    await expect(runStep({ driver: 'Bad Name', env: { CONVEYOR_NATS_URL: 'nats://127.0.0.1:1' } })).rejects.toThrow('runStep: invalid driver name "Bad Name"');
  });
});
