import { checkOptions, formatResults, runConformance, SetupError } from '@conveyor/conformance';
import { CliError, EXIT } from '../errors';

/**
 * `conveyor conformance --driver NAME [--timeout S] [--scenario NAME…] -- COMMAND…`: puts the
 * driver COMMAND starts through the step protocol's scenarios (libs/conformance) and prints a
 * table. Exit 0 when every scenario passed, 1 when one failed, 2 on a usage error or when the
 * kit cannot run (no nats-server, no built gateway).
 */
export async function conformance(command: string[], o: { driver: string; timeout: string; scenario?: string[] }, say: (line: string) => void): Promise<number> {
  const opts = { driver: o.driver, command, timeoutMs: Number(o.timeout) * 1000, only: o.scenario, say: (l: string) => process.stderr.write(`${l}\n`) };
  const problem = checkOptions(opts);
  if (problem) throw new CliError(problem);
  try {
    const results = await runConformance(opts);
    say(formatResults(o.driver, results));
    return results.every((r) => r.passed) ? EXIT.ok : EXIT.failed;
  } catch (err) {
    if (err instanceof SetupError) throw new CliError(err.message);
    throw err;
  }
}
