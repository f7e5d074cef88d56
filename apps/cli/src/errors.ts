/**
 * Exit codes of the `conveyor` CLI (documented in the README's CLI section):
 *   0 success (a followed run succeeded)   1 a followed run failed (or `events --count` fell short)
 *   2 usage, manifest or HTTP error        130 a followed run was cancelled, or Ctrl-C
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 130 } as const;

/** An error the CLI reports as one clear line (no stack trace) and exits with `code`. */
export class CliError extends Error {
  constructor(message: string, readonly code: number = EXIT.usage) {
    super(message);
  }
}
