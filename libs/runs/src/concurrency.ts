import type { JsonObject } from '@conveyor/contracts';

const REF = /\$\{\{\s*([^}]*?)\s*\}\}/g;
const PATH = /^(pipeline|resource\.(name|type)|resource\.spec(\.[A-Za-z0-9_-]+)+)$/;

/** Why a concurrency group template cannot be used (for a 400), or undefined. */
export function groupTemplateProblem(template: string): string | undefined {
  if (!template.trim()) return 'concurrency.group is empty';
  for (const [, expr] of template.matchAll(REF)) {
    if (!PATH.test(expr)) return `concurrency.group: \${{ ${expr} }} is not one of pipeline, resource.name, resource.type, resource.spec.<key>`;
  }
  return undefined;
}

/**
 * A pipeline's concurrency group for one resource: its template with `${{ pipeline }}`,
 * `${{ resource.name }}`, `${{ resource.type }}` and `${{ resource.spec.<key>… }}` filled in
 * (a missing spec key is empty), prefixed with the pipeline's name unless the template names
 * it, so two pipelines share a group only when their templates say so.
 */
export function renderGroup(template: string, pipeline: string, resource: { type: string; name: string; spec: JsonObject }): string {
  return template.replace(REF, (_, expr: string) => {
    if (expr === 'pipeline') return pipeline;
    if (expr === 'resource.name') return resource.name;
    if (expr === 'resource.type') return resource.type;
    let v: unknown = resource.spec;
    for (const k of expr.split('.').slice(2)) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
    return v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  });
}
