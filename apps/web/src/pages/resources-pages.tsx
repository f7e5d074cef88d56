import { diffLines } from 'diff';
import type { Resource, Run } from '@conveyor/contracts/models';
import { api, query } from '../api/client';
import { Empty, ErrorBox, Json, ListOf, Loading, PageHeader, StatusBadge } from '../components/common';
import { may, useLoad, useNow, useSession, useTitle } from '../hooks';
import { formatAge } from '../lib/format';
import { href, type Route } from '../lib/router';

export function ResourcesPage({ route }: { route: Route }) {
  useTitle('Resources');
  const now = useNow(5000);
  const type = route.query.get('type') ?? undefined;
  const list = useLoad((s) => api.get<Resource[]>(`/resources${query({ resource: type })}`, s), [type]);
  return (
    <>
      <PageHeader title={type ? `Resources of ${type}` : 'Resources'}>{type && <a href={href(['resources'])}>All resources</a>}</PageHeader>
      <ListOf state={list} what="resources" empty={<>No resources yet.</>}>
        {(items) => (
          <table class="list" aria-label="Resources">
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">Definition</th>
                <th scope="col">Latest version</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Changed</th>
              </tr>
            </thead>
            <tbody>
              {items.map((r) => (
                <tr key={`${r.resource}/${r.name}`}>
                  <th scope="row">
                    <a href={href(['resources', r.resource, r.name])}>{r.name}</a>
                  </th>
                  <td>
                    <a href={href(['definitions', r.resource])}>{r.resource}</a>
                  </td>
                  <td>{r.version}</td>
                  <td>{r.pipeline ? <a href={href(['pipelines', r.pipeline])}>{r.pipeline}</a> : '—'}</td>
                  <td title={r.createdAt}>{formatAge(r.createdAt, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ListOf>
    </>
  );
}

/** A resource: its latest version, its runs, and the difference between any two of its versions (`?a=1&b=3`). */
export function ResourcePage({ type, name, route }: { type: string; name: string; route: Route }) {
  useTitle(`Resource ${type}/${name}`);
  const session = useSession();
  const base = `/resources/${encodeURIComponent(type)}/${encodeURIComponent(name)}`;
  const latest = useLoad((s) => api.get<Resource>(base, s), [base]);
  const runs = useLoad((s) => api.get<Run[]>(`/runs${query({ resource: name, type, limit: 20 })}`, s), [type, name]);
  const top = latest.data?.version ?? 0;
  const b = clamp(Number(route.query.get('b')) || top, top);
  const a = clamp(Number(route.query.get('a')) || b - 1, top);
  const versions = useLoad(
    async (s) => (top && a >= 1 && b >= 1 ? Promise.all([api.get<Resource>(`${base}/${a}`, s), api.get<Resource>(`${base}/${b}`, s)]) : undefined),
    [base, a, b, top],
  );
  if (latest.error) return <ErrorBox error={latest.error} title="Could not load the resource" />;
  if (!latest.data) return <Loading what="the resource" />;
  const pick = (which: 'a' | 'b', v: number) => {
    location.hash = href(['resources', type, name], { a, b, [which]: v });
  };
  return (
    <>
      <PageHeader title={`Resource ${type}/${name}`}>
        {may(session, 'write') && (
          <a class="button primary" href={href(['trigger'], { pipeline: latest.data.pipeline, resource: name, type })}>
            Trigger with an edited spec
          </a>
        )}
      </PageHeader>
      <dl class="facts">
        <dt>Latest version</dt>
        <dd>{top}</dd>
        <dt>Pipeline</dt>
        <dd>{latest.data.pipeline ? <a href={href(['pipelines', latest.data.pipeline])}>{latest.data.pipeline}</a> : '—'}</dd>
      </dl>
      <h2>Versions</h2>
      {top < 2 ? (
        <>
          <p class="muted">Only one version so far.</p>
          <Json value={latest.data.spec} label="Spec of version 1" />
        </>
      ) : (
        <>
          <form class="filters" aria-label="Versions to compare" onSubmit={(e) => e.preventDefault()}>
            <VersionSelect label="From version" value={a} top={top} onPick={(v) => pick('a', v)} />
            <VersionSelect label="to version" value={b} top={top} onPick={(v) => pick('b', v)} />
          </form>
          {versions.error && <ErrorBox error={versions.error} title="Could not load the versions" />}
          {versions.data && <SpecDiff from={versions.data[0]} to={versions.data[1]} />}
        </>
      )}
      <h2>Runs</h2>
      {runs.data && !runs.data.length && <Empty>No runs of this resource.</Empty>}
      {runs.data && runs.data.length > 0 && (
        <ul class="plain">
          {runs.data.map((r) => (
            <li key={r.id}>
              <StatusBadge status={r.status} /> <a href={href(['runs', r.id])} class="mono">{r.id}</a> version {r.resource.version}, {r.pipeline.name}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function VersionSelect({ label, value, top, onPick }: { label: string; value: number; top: number; onPick: (v: number) => void }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onPick(Number((e.target as HTMLSelectElement).value))}>
        {Array.from({ length: top }, (_, i) => top - i).map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </label>
  );
}

function clamp(v: number, top: number): number {
  return Math.max(1, Math.min(top, Math.floor(v)));
}

/** What changed between two versions, line by line over their pretty-printed JSON (spec, pipeline, metadata). */
export function SpecDiff({ from, to }: { from: Resource; to: Resource }) {
  const shape = (r: Resource) => `${JSON.stringify({ pipeline: r.pipeline ?? null, spec: r.spec, metadata: r.metadata }, null, 2)}\n`;
  const parts = diffLines(shape(from), shape(to));
  const same = parts.every((p) => !p.added && !p.removed);
  return (
    <figure class="diff-figure">
      <figcaption>
        Version {from.version} → version {to.version}
        {same ? ': no difference' : ''}
      </figcaption>
      <pre class="diff" aria-label={`Difference between version ${from.version} and version ${to.version}`} tabIndex={0}>
        {parts.flatMap((p, i) =>
          p.value
            .replace(/\n$/, '')
            .split('\n')
            .map((line, j) => (
              <span key={`${i}-${j}`} class={p.added ? 'add' : p.removed ? 'del' : 'same'}>
                <span class="sr-only">{p.added ? 'added: ' : p.removed ? 'removed: ' : ''}</span>
                {p.added ? '+ ' : p.removed ? '- ' : '  '}
                {line}
                {'\n'}
              </span>
            )),
        )}
      </pre>
    </figure>
  );
}
