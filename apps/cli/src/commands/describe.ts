import type { Run } from '@conveyor/contracts';
import type { GatewayClient } from '../client';
import { CliError } from '../errors';
import { formatDuration, paint, printStructured, STATUS_COLOR, table, useColor, type OutputFormat } from '../output';
import { runDuration } from './get';
import { isLine } from '@conveyor/runs';

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
  if (!isLine(run.steps)) s += `\nGraph:\n${graphTree(run, color)}`;
  return s;
}

/**
 * The run's steps as a tree of what needs what: each step under the first step it needs (the
 * others it needs named beside it), steps that need none at the top.
 */
export function graphTree(run: Run, color: boolean): string {
  const steps = run.steps;
  const children = new Map<string, string[]>();
  for (const st of steps) if (st.needs.length) children.set(st.needs[0], [...(children.get(st.needs[0]) ?? []), st.id]);
  const byId = new Map(steps.map((st) => [st.id, st]));
  const lines: string[] = [];
  const walk = (id: string, prefix: string, last: boolean, top: boolean) => {
    const st = byId.get(id)!;
    const also = st.needs.slice(1);
    const notes = [
      also.length ? `also needs ${also.join(', ')}` : '',
      st.matrix ? Object.entries(st.matrix).map(([k, v]) => `${k}=${v}`).join(' ') : '',
      st.reusedFrom ? `carried over from ${st.reusedFrom}` : '',
      st.always ? 'always' : '',
    ].filter(Boolean);
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    lines.push(`  ${prefix}${branch}${st.id} ${paint(st.status, STATUS_COLOR[st.status] ?? 0, color)}${notes.length ? `  (${notes.join('; ')})` : ''}`);
    const kids = children.get(id) ?? [];
    kids.forEach((k, i) => walk(k, top ? prefix : prefix + (last ? '   ' : '│  '), i === kids.length - 1, false));
  };
  for (const st of steps) if (!st.needs.length) walk(st.id, '', true, true);
  return lines.join('\n') + '\n';
}
