import { runRawDriver } from './driver';

runRawDriver().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
