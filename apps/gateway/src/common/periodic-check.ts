import type { Logger } from '@nestjs/common';

/**
 * Runs `check` every `intervalMs`, never two at once (a slow check skips the ticks it
 * overlaps), logging a failure and going on. `stop()` waits for a check under way.
 */
export class PeriodicCheck {
  private readonly timer: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(what: string, intervalMs: number, check: () => Promise<void>, log: Logger) {
    this.timer = setInterval(() => {
      this.running ??= check()
        .catch((err) => log.warn(`${what} failed: ${(err as Error).message}`))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
