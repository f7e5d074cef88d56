import { chaosOptionsFromEnv, formatReport, runChaos, stopAllChaos } from './chaos';

/**
 * `npm run chaos` (after `npm run build`): the chaos suite of ./chaos.ts with its settings from
 * the environment (CHAOS_RUNS, CHAOS_RATE, CHAOS_AGENTS, CHAOS_CONCURRENCY, CHAOS_KILL_EVERY,
 * CONVEYOR_ACK_WAIT, CHAOS_NATS_SIGNAL, CHAOS_CLUSTER, CHAOS_NODE_DOWN, CHAOS_SETTLE,
 * CHAOS_SEED, CHAOS_KEEP). Prints progress and the table of figures; exits 1 when a target
 * was missed, 2 when the suite itself could not run.
 */
async function main(): Promise<number> {
  const options = { ...chaosOptionsFromEnv(), log: (line: string) => console.log(line) };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping every process the suite started`);
      void stopAllChaos().finally(() => process.exit(130));
    });
  }
  const report = await runChaos(options);
  console.log(`\n${formatReport(report)}`);
  return report.missed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  },
);
