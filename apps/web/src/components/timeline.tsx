import type { Run } from '@conveyor/contracts/models';
import { elapsed, formatDuration } from '../lib/format';

/** Each step's time as a bar on the run's time axis (a waterfall): what ran when, and what waited. */
export function Timeline({ run, now }: { run: Run; now: number }) {
  const start = Date.parse(run.startedAt ?? run.createdAt);
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  const span = Math.max(1, end - start);
  const timed = run.steps.filter((s) => s.startedAt);
  if (!timed.length) return <p class="muted">No step has started yet.</p>;
  return (
    <table class="timeline" aria-label="Step timings">
      <thead>
        <tr>
          <th scope="col">Step</th>
          <th scope="col">Duration</th>
          <th scope="col" class="timeline-axis">
            0 — {formatDuration(span)}
          </th>
        </tr>
      </thead>
      <tbody>
        {timed.map((s) => {
          const from = Date.parse(s.startedAt!) - start;
          const took = elapsed(s.startedAt, s.finishedAt, s.durationMs, now) ?? 0;
          const left = Math.max(0, Math.min(100, (from / span) * 100));
          const width = Math.max(0.5, Math.min(100 - left, (took / span) * 100));
          return (
            <tr key={s.id}>
              <th scope="row">{s.id}</th>
              <td>{formatDuration(took)}</td>
              <td class="timeline-track">
                <span
                  class={`bar status-${s.status}`}
                  style={{ left: `${left}%`, width: `${width}%` }}
                  title={`${s.id}: started at +${formatDuration(from)}, took ${formatDuration(took)} (${s.status})`}
                />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
