import { useEffect, useState } from 'preact/hooks';
import type { Pipeline, Run, RunStatus } from '@conveyor/contracts/models';
import { api, query, request } from '../api/client';
import { openEventStream } from '../api/event-stream';
import { Empty, ErrorBox, Loading, PageHeader, StatusBadge } from '../components/common';
import { may, useLoad, useNow, useSession, useTitle } from '../hooks';
import { elapsed, formatAge, formatDuration } from '../lib/format';
import { href, type Route } from '../lib/router';
import { mergeRun, type RunsFilter } from '../lib/runs-feed';

const LIMIT = 50;
const STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/**
 * Runs, newest first, filtered and paged by the address (`#/runs?pipeline=&status=&resource=&before=`),
 * kept live by the run-changes stream: new runs appear at the top, statuses change in place.
 */
export function RunsPage({ route }: { route: Route }) {
  useTitle('Runs');
  const session = useSession();
  const now = useNow();
  const filter: RunsFilter = {
    pipeline: route.query.get('pipeline') ?? undefined,
    status: (route.query.get('status') as RunStatus | null) ?? undefined,
    resource: route.query.get('resource') ?? undefined,
  };
  const before = route.query.get('before') ?? undefined;
  const firstPage = !before;
  const [live, setLive] = useState<'connecting' | 'open' | 'retrying' | 'closed'>('connecting');
  const pipelines = useLoad((s) => api.get<Pipeline[]>('/pipelines', s), []);
  const runs = useLoad(
    async (signal) => {
      const r = await request<Run[]>('GET', `/runs${query({ ...filter, before, limit: LIMIT })}`, undefined, signal);
      return { list: r.body, partial: r.headers.get('Conveyor-Runs-Partial') };
    },
    [filter.pipeline, filter.status, filter.resource, before],
  );
  // The page as loaded, then changed in place by the stream (functional updates: no stale copy).
  const [list, setList] = useState<Run[]>([]);
  useEffect(() => setList(runs.data?.list ?? []), [runs.data]);

  // Changes from now on; the page is loaded again on each (re)connect, so nothing is missed between.
  useEffect(() => {
    const stream = openEventStream({
      path: '/runs/events',
      onEvent: (event, data) => {
        if (event === 'run') setList((old) => mergeRun(old, JSON.parse(data) as Run, filter, { firstPage, limit: LIMIT }));
      },
      onState: (s) => {
        setLive(s);
        if (s === 'open') runs.reload();
      },
    });
    return () => stream.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [filter.pipeline, filter.status, filter.resource, before]);

  const setFilter = (change: Partial<RunsFilter>) => {
    location.hash = href(['runs'], { ...filter, ...change });
  };

  return (
    <>
      <PageHeader title="Runs">
        <span class={`live live-${live}`} role="status" aria-live="polite">
          {live === 'open' ? 'live' : live === 'retrying' ? 'reconnecting…' : live}
        </span>
        {may(session, 'write') && (
          <a class="button primary" href={href(['trigger'], { pipeline: filter.pipeline })}>
            Trigger a run
          </a>
        )}
      </PageHeader>
      <form class="filters" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>
          Pipeline
          <select value={filter.pipeline ?? ''} onChange={(e) => setFilter({ pipeline: (e.target as HTMLSelectElement).value || undefined })}>
            <option value="">any</option>
            {(pipelines.data ?? []).map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
            {filter.pipeline && !(pipelines.data ?? []).some((p) => p.name === filter.pipeline) && <option value={filter.pipeline}>{filter.pipeline}</option>}
          </select>
        </label>
        <label>
          Status
          <select value={filter.status ?? ''} onChange={(e) => setFilter({ status: ((e.target as HTMLSelectElement).value || undefined) as RunStatus | undefined })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Resource
          <input
            type="search"
            value={filter.resource ?? ''}
            placeholder="resource name"
            onChange={(e) => setFilter({ resource: (e.target as HTMLInputElement).value.trim() || undefined })}
          />
        </label>
      </form>
      {runs.error && <ErrorBox error={runs.error} title="Could not load the runs" />}
      {runs.data?.partial && <p class="muted">Only the newest {runs.data.partial} runs were searched for this filter.</p>}
      {!runs.data && !runs.error && <Loading what="runs" />}
      {runs.data && !list.length && <Empty>No runs{filter.pipeline || filter.status || filter.resource ? ' match these filters' : ' yet'}.</Empty>}
      {list.length > 0 && (
        <table class="list runs" aria-label="Runs">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Run</th>
              <th scope="col">Pipeline</th>
              <th scope="col">Resource</th>
              <th scope="col">Triggered by</th>
              <th scope="col">Created</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {list.map((r) => (
              <tr key={r.id} data-run={r.id}>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td>
                  <a href={href(['runs', r.id])} class="mono">
                    {r.id}
                  </a>
                </td>
                <td>
                  <a href={href(['pipelines', r.pipeline.name])}>{r.pipeline.name}</a>
                </td>
                <td>
                  <a href={href(['resources', r.resource.type, r.resource.name])}>
                    {r.resource.name}
                  </a>{' '}
                  <span class="muted">v{r.resource.version}</span>
                </td>
                <td>{r.rerunOf ? <a href={href(['runs', r.rerunOf])}>re-run of {r.rerunOf.slice(-6)}</a> : `${r.resource.type} v${r.resource.version}`}</td>
                <td title={r.createdAt}>{formatAge(r.createdAt, now)}</td>
                <td>{formatDuration(elapsed(r.startedAt, r.finishedAt, r.durationMs, now))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        {!firstPage && <a href={href(['runs'], { ...filter })}>Newest runs</a>}
        {list.length >= LIMIT && <a href={href(['runs'], { ...filter, before: list[list.length - 1].id })}>Older runs</a>}
      </nav>
    </>
  );
}
