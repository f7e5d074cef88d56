import { useEffect } from 'preact/hooks';
import type { Schedule, ScheduleTickOutcome } from '@conveyor/contracts/models';
import { ApiError, api } from '../api/client';
import { ConfirmButton, ErrorBox, Json, ListOf, Loading, PageHeader, StatusBadge } from '../components/common';
import { may, useLoad, useNow, useSession, useTitle } from '../hooks';
import { formatAge, formatTime, formatUntil } from '../lib/format';
import { href } from '../lib/router';

/** GET /schedules answers these: the stored schedule with its next due time and its last tick. */
export type ScheduleView = Omit<Schedule, 'last'> & { next: string | null; last: ScheduleTickOutcome | null };

export function SchedulesPage() {
  useTitle('Schedules');
  const now = useNow(5000);
  const list = useLoad((s) => api.get<ScheduleView[]>('/schedules', s), []);
  useEvery(10_000, list.reload);
  return (
    <>
      <PageHeader title="Schedules">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">Each tick of a schedule's cron makes a new version of its resource and starts a run of its pipeline.</p>
      <ListOf state={list} what="schedules" empty={<>No schedules: POST one to /schedules.</>}>
        {(items) => (
          <table class="list" aria-label="Schedules">
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">Cron</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Resource</th>
                <th scope="col">Next tick</th>
                <th scope="col">Last tick</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={s.name} data-schedule={s.name}>
                  <th scope="row">
                    <a href={href(['schedules', s.name])}>{s.name}</a>
                  </th>
                  <td>
                    <code class="cron">{s.cron}</code>
                    <div class="muted">{s.timezone ?? 'UTC'}</div>
                  </td>
                  <td>
                    <a href={href(['pipelines', s.pipeline])}>{s.pipeline}</a>
                  </td>
                  <td>
                    <a href={href(['resources', s.resource, s.resourceName])}>
                      {s.resource}/{s.resourceName}
                    </a>
                  </td>
                  <td class="next">
                    <NextTick next={s.next} timezone={s.timezone} now={now} />
                  </td>
                  <td class="last">
                    <LastTick last={s.last} now={now} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ListOf>
    </>
  );
}

export function SchedulePage({ name }: { name: string }) {
  useTitle(`Schedule ${name}`);
  const session = useSession();
  const now = useNow(5000);
  const s = useLoad((signal) => api.get<ScheduleView>(`/schedules/${encodeURIComponent(name)}`, signal), [name]);
  useEvery(10_000, s.reload);
  if (s.error) return <ErrorBox error={s.error} title={s.error instanceof ApiError && s.error.status === 404 ? 'No such schedule' : 'Could not load the schedule'} />;
  if (!s.data) return <Loading what="the schedule" />;
  const d = s.data;
  return (
    <>
      <PageHeader title={`Schedule ${d.name}`}>
        <a class="button" href={href(['runs'], { pipeline: d.pipeline, resource: d.resourceName })}>
          Its runs
        </a>
        {may(session, 'admin') && (
          <ConfirmButton
            label="Delete"
            question={<>Delete schedule {d.name}? Its ticks stop; the runs it started stay.</>}
            confirm="Delete the schedule"
            onConfirm={async () => {
              await api.del(`/schedules/${encodeURIComponent(d.name)}`);
              location.hash = href(['schedules']);
            }}
          />
        )}
      </PageHeader>
      <dl class="facts">
        <dt>Cron</dt>
        <dd>
          <code class="cron">{d.cron}</code>
        </dd>
        <dt>Time zone</dt>
        <dd>{d.timezone ?? 'UTC'}</dd>
        <dt>Next tick</dt>
        <dd class="next">
          <NextTick next={d.next} timezone={d.timezone} now={now} />
        </dd>
        <dt>Last tick</dt>
        <dd class="last">
          <LastTick last={d.last} now={now} />
        </dd>
        <dt>Pipeline</dt>
        <dd>
          <a href={href(['pipelines', d.pipeline])}>{d.pipeline}</a>
        </dd>
        <dt>Resource</dt>
        <dd>
          <a href={href(['resources', d.resource, d.resourceName])}>{d.resourceName}</a> of type <a href={href(['definitions', d.resource])}>{d.resource}</a>
        </dd>
        <dt>Timed since</dt>
        <dd title={d.since}>{formatAge(d.since, now)} (no tick is due before the current cron and zone took effect)</dd>
        <dt>Created</dt>
        <dd title={d.createdAt}>{formatAge(d.createdAt, now)}</dd>
        <dt>Updated</dt>
        <dd title={d.updatedAt}>{formatAge(d.updatedAt, now)}</dd>
      </dl>
      <h2>Spec of each tick's resource version</h2>
      <Json value={d.spec} label={`Spec of schedule ${d.name}`} />
    </>
  );
}

/** Ticks come on their own: the next and last tick are read again now and then. */
function useEvery(ms: number, f: () => void): void {
  useEffect(() => {
    const t = setInterval(f, ms);
    return () => clearInterval(t);
  }, [ms, f]);
}

function NextTick({ next, timezone, now }: { next: string | null; timezone?: string; now: number }) {
  if (!next) return <span class="muted">none (the cron never fires again)</span>;
  return (
    <>
      <time dateTime={next} title={next}>
        {formatTime(next, timezone)}
      </time>{' '}
      <span class="muted">{formatUntil(next, now)}</span>
    </>
  );
}

function LastTick({ last, now }: { last: ScheduleTickOutcome | null; now: number }) {
  if (!last) return <span class="muted">not yet</span>;
  return (
    <>
      {last.error ? <StatusBadge status="no run" tone="failed" /> : <StatusBadge status="started" tone="succeeded" />}{' '}
      <span title={last.at}>{formatAge(last.at, now)}</span>
      {last.runid && (
        <div>
          <a href={href(['runs', last.runid])} class="mono">
            {last.runid}
          </a>
          {last.version !== undefined && <span class="muted"> version {last.version}</span>}
        </div>
      )}
      {last.error && <div class="message">{last.error}</div>}
    </>
  );
}
