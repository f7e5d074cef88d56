import type { StepStatus } from '@conveyor/contracts/models';
import { layoutGraph } from '../lib/graph-layout';

const W = 168;
const H = 44;
const GAP_X = 56;
const GAP_Y = 16;

export interface GraphStep {
  id: string;
  label: string;
  needs: string[];
  status?: StepStatus;
  note?: string;
}

/**
 * A pipeline's or a run's steps as a graph: columns by what they wait for, edges from each
 * step to those that need it, a run's statuses as colours and words (never colour alone).
 * Steps are buttons: Enter or a click selects one.
 */
export function StepGraph({ steps, selected, onSelect, label }: { steps: GraphStep[]; selected?: string; onSelect?: (id: string) => void; label: string }) {
  const layout = layoutGraph(steps);
  const byId = new Map(layout.nodes.map((n) => [n.id, n]));
  const info = new Map(steps.map((s) => [s.id, s]));
  const x = (c: number) => 8 + c * (W + GAP_X);
  const y = (r: number) => 8 + r * (H + GAP_Y);
  const width = x(layout.columns) - GAP_X + 8;
  const height = y(layout.rows) - GAP_Y + 8;
  return (
    <div class="graph-scroll">
      <svg class="graph" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="group" aria-label={label}>
        {layout.edges.map((e) => {
          const a = byId.get(e.from)!;
          const b = byId.get(e.to)!;
          const x1 = x(a.column) + W;
          const y1 = y(a.row) + H / 2;
          const x2 = x(b.column);
          const y2 = y(b.row) + H / 2;
          const mid = (x1 + x2) / 2;
          return <path key={`${e.from}>${e.to}`} class="edge" d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`} />;
        })}
        {layout.nodes.map((n) => {
          const s = info.get(n.id)!;
          const text = `${s.label}${s.status ? `: ${s.status}` : ''}${s.note ? ` (${s.note})` : ''}`;
          return (
            <g
              key={n.id}
              class={`node status-${s.status ?? 'none'}${selected === n.id ? ' selected' : ''}`}
              transform={`translate(${x(n.column)},${y(n.row)})`}
              role={onSelect ? 'button' : 'img'}
              // SVG attributes are case-sensitive: `tabindex`, not `tabIndex`.
              tabindex={onSelect ? 0 : undefined}
              aria-label={text}
              aria-pressed={onSelect ? selected === n.id : undefined}
              data-step={n.id}
              onClick={() => onSelect?.(n.id)}
              onKeyDown={(e) => {
                if (onSelect && (e.key === 'Enter' || e.key === ' ')) {
                  e.preventDefault();
                  onSelect(n.id);
                }
              }}
            >
              <title>{text}</title>
              <rect width={W} height={H} rx={6} />
              <text x={10} y={18} class="node-label">
                {clip(s.label, 22)}
              </text>
              <text x={10} y={34} class="node-status">
                {clip(s.status ?? s.note ?? '', 24)}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
