/**
 * Where to draw each step of a pipeline or run graph: columns by dependency depth (a step sits
 * one column right of the deepest step it needs), rows in a column ordered by the rows of what
 * they need so edges cross little. Pipelines are small (≤ 256 steps), so this simple layering
 * reads well without a general graph-layout library.
 */

export interface GraphNodeInput {
  id: string;
  needs: string[];
}

export interface PlacedNode {
  id: string;
  column: number;
  row: number;
}

export interface GraphLayout {
  nodes: PlacedNode[];
  edges: Array<{ from: string; to: string }>;
  columns: number;
  rows: number;
}

export function layoutGraph(input: GraphNodeInput[]): GraphLayout {
  const byId = new Map(input.map((n) => [n.id, n]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    // A cycle cannot be stored (the API refuses it); should one arrive, it is drawn flat, not looped on.
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const needs = (byId.get(id)?.needs ?? []).filter((n) => byId.has(n));
    const d = needs.length ? Math.max(...needs.map(depthOf)) + 1 : 0;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const columns: string[][] = [];
  for (const n of input) (columns[depthOf(n.id)] ??= []).push(n.id);
  const row = new Map<string, number>();
  for (const [c, ids] of columns.entries()) {
    if (!ids) continue;
    // Keep the pipeline's order among steps with no placed parents; otherwise follow the parents' mean row.
    const weight = (id: string, order: number) => {
      const parents = (byId.get(id)?.needs ?? []).map((p) => row.get(p)).filter((r): r is number => r !== undefined);
      return c === 0 || !parents.length ? order : parents.reduce((a, b) => a + b, 0) / parents.length + order / 1e6;
    };
    const sorted = ids.map((id, order) => ({ id, w: weight(id, order) })).sort((a, b) => a.w - b.w);
    sorted.forEach((n, r) => row.set(n.id, r));
  }
  const nodes = input.map((n) => ({ id: n.id, column: depth.get(n.id) ?? 0, row: row.get(n.id) ?? 0 }));
  const edges = input.flatMap((n) => n.needs.filter((p) => byId.has(p)).map((p) => ({ from: p, to: n.id })));
  return { nodes, edges, columns: columns.length, rows: Math.max(0, ...columns.map((c) => c?.length ?? 0)) };
}

/** A pipeline definition's steps with their needs resolved (no `needs`: the step before it). */
export function resolveNeeds<T extends { id: string; needs?: string[] }>(steps: T[]): Array<T & { needs: string[] }> {
  return steps.map((s, i) => ({ ...s, needs: s.needs ?? (i > 0 ? [steps[i - 1].id] : []) }));
}
