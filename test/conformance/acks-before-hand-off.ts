import { runRawDriver } from '../../examples/raw-driver/driver';

/**
 * A deliberately wrong driver, for the conformance kit's own test: the raw example driver, but
 * it acks each step message before its hand-off is stored (what the step protocol forbids: a
 * crash in between would lose the run). `conveyor conformance` must fail it.
 */
runRawDriver({ ackBeforeHandOff: true }).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
