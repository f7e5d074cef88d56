import type { Run } from '@conveyor/contracts';
import type { GatewayClient } from '../client';
import { CliError } from '../errors';
import { formatDuration, paint, printStructured, STATUS_COLOR, table, useColor, type OutputFormat } from '../output';
import { runDuration } from './get';

/** `conveyor describe run ID`: the run, then each step's status, attempts, agent and timing. */
export async function describe(client: GatewayClient, kind: string, id: string, format: OutputFormat): Promise<void> {
  if (!/^runs?$/i.test(kind)) throw new CliError(`describe ${kind}: only "describe run ID" is supported`);
  const run = await client.get<Run>(`/runs/${encodeURIComponent(id)}`);
  if (printStructured(format, run)) return;
  process.stdout.write(describeRun(run, useColor()));
}

export function describeRun(run: Run, color: boolean): string {
  const field = (k: string, v: string | undefined) => `${(k + ':').padEnd(11)}${v ?? '-'}\n`;
  let s = '';
  s += field('Run', run.id);
  s += field('Pipeline', run.pipeline.name);
  s += field('Resource', `${run.resource.type}/${run.resource.name} (version ${run.resource.version})`);
  s += field('Status', paint(run.status, STATUS_COLOR[run.status] ?? 0, color) + (run.cancelRequested && run.status !== 'cancelled' ? ' (cancel requested)' : ''));
  if (run.message) s += field('Message', run.message);
  s += field('Created', run.createdAt);
  s += field('Started', run.startedAt);
  s += field('Finished', run.finishedAt);
  s += field('Duration', formatDuration(runDuration(run)));
  s += '\nSteps:\n';
  s += table(
    ['  ID', 'NAME', 'DRIVER', 'STATUS', 'ATTEMPTS', 'AGENT', 'STARTED', 'DURATION', 'MESSAGE'],
    run.steps.map((st) => [
      `  ${st.id}`, st.name, st.driver + (st.always ? ' (always)' : ''), st.status, st.attempts, st.agent,
      st.startedAt?.replace(/^.*T|Z$/g, ''), st.durationMs !== undefined ? formatDuration(st.durationMs) : st.startedAt && !st.finishedAt ? formatDuration(Date.now() - Date.parse(st.startedAt)) : undefined,
      st.message,
    ]),
  );
  return s;
}
