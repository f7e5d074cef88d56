import { useEffect, useState } from 'preact/hooks';
import type { Resource, Run, RunReport, StepRun } from '@conveyor/contracts/models';
import { ApiError, api, downloadFile, request } from '../api/client';
import { openEventStream } from '../api/event-stream';
import { ErrorBox, Loading, PageHeader, StatusBadge } from '../components/common';
import { LogView } from '../components/log-view';
import { StepGraph } from '../components/step-graph';
import { Timeline } from '../components/timeline';
import { useRunLog } from '../components/use-run-log';
import { may, useLoad, useNow, useSession, useTitle } from '../hooks';
import { elapsed, formatAge, formatBytes, formatDuration, formatTime } from '../lib/format';
import { artifactPath, originOf, refName, shortCommit } from '../lib/origin';
import { href, type Route } from '../lib/router';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * One run, live: the failed step's message first, the step graph, the actions the caller's role
 * allows, each step's attempts, agent and machine, a waterfall of step timings, and the log
 * (the whole run's or one step's, `#/runs/<id>?step=<step>&line=<n>`).
 */
export function RunPage({ id, route }: { id: string; route: Route }) {
  useTitle(`Run ${id}`);
  const now = useNow();
  const [run, setRun] = useState<{ value: Run; rev: number } | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const [live, setLive] = useState<'connecting' | 'open' | 'retrying' | 'closed'>('connecting');
  const step = route.query.get('step') ?? undefined;
  const line = Number(route.query.get('line')) || undefined;
  const log = useRunLog(id);

  // The record as stored, then every change to it; a newer revision always wins (the load and the stream race).
  useEffect(() => {
    setRun(undefined);
    setError(undefined);
    const take = (value: Run, rev: number) => setRun((old) => (old && old.rev >= rev ? old : { value, rev }));
    const load = () =>
      request<Run>('GET', `/runs/${encodeURIComponent(id)}`).then(
        (r) => take(r.body, Number(/\d+/.exec(r.headers.get('ETag') ?? '')?.[0] ?? 0)),
        (e: Error) => setError(e),
      );
    const stream = openEventStream({
      path: `/runs/events?run=${encodeURIComponent(id)}`,
      onEvent: (event, data, eventId) => {
        if (event === 'run') take(JSON.parse(data) as Run, Number(eventId ?? 0));
      },
      onState: (s) => {
        setLive(s);
        if (s === 'open') void load();
      },
    });
    void load();
    return () => stream.stop();
  }, [id]);

  // The log does not wait for the run's record: on a busy gateway its first lines come sooner.
  const r = run?.value;
  const selected = step && (!r || r.steps.some((s) => s.id === step)) ? step : undefined;
  const select = (s: string | undefined) => {
    location.hash = href(['runs', id], { step: s });
  };
  return (
    <>
      {error ? (
        <ErrorBox error={error} title={error instanceof ApiError && error.status === 404 ? 'No such run' : 'Could not load the run'} />
      ) : r ? (
        <RunDetails run={r} live={live} now={now} selected={selected} onSelect={select} />
      ) : (
        <Loading what="the run" />
      )}
      <h2 id="log">Log</h2>
      <div class="tabs" role="tablist" aria-label="Whose log">
        <a role="tab" aria-selected={!selected} href={href(['runs', id])}>
          All steps
        </a>
        {r?.steps.map((s) => (
          <a key={s.id} role="tab" aria-selected={selected === s.id} href={href(['runs', id], { step: s.id })}>
            {s.id}
          </a>
        ))}
      </div>
      <p class="muted" role="status">
        {log.state === 'ended' ? `The log is complete (the run ${log.end?.status}).` : log.state === 'open' ? 'Following the log live.' : log.state === 'retrying' ? `Reconnecting to the log${log.detail ? ` (${log.detail})` : ''}…` : log.state === 'closed' ? `The log stream closed${log.detail ? `: ${log.detail}` : ''}.` : 'Connecting to the log…'}
      </p>
      <LogView
        key={selected ?? ''}
        model={log.model}
        version={log.version}
        stepId={selected}
        showStep={!selected}
        label={selected ? `Log of step ${selected}` : 'Log of the run'}
        lineHref={(n) => href(['runs', id], { step: selected, line: n })}
        targetLine={line}
        downloadName={`${id}${selected ? `-${selected}` : ''}.log`}
      />
    </>
  );
}

function RunDetails({ run: r, live, now, selected, onSelect: select }: { run: Run; live: string; now: number; selected?: string; onSelect: (s: string | undefined) => void }) {
  const session = useSession();
  const failed = r.steps.find((s) => s.status === 'failed');
  return (
    <>
      <PageHeader
        title={
          <>
            Run <span class="mono">{r.id}</span> <StatusBadge status={r.status} />
          </>
        }
      >
        {!TERMINAL.has(r.status) && (
          <span class={`live live-${live}`} role="status" aria-live="polite">
            {live === 'open' ? 'live' : live === 'retrying' ? 'reconnecting…' : live}
          </span>
        )}
        {may(session, 'write') && <RunActions run={r} />}
      </PageHeader>
      {r.status === 'failed' && (
        <div class="error-box" role="alert" data-testid="failure">
          <strong>{failed ? `Step ${failed.id} failed` : 'The run failed'}:</strong> {failed?.message ?? r.message ?? 'no message'}
        </div>
      )}
      {r.status === 'cancelled' && <div class="notice">{r.message ?? 'The run was cancelled.'}</div>}
      <dl class="facts">
        <dt>Pipeline</dt>
        <dd>
          <a href={href(['pipelines', r.pipeline.name])}>{r.pipeline.name}</a>
        </dd>
        <dt>Resource</dt>
        <dd>
          <a href={href(['resources', r.resource.type, r.resource.name], { b: r.resource.version })}>
            {r.resource.type}/{r.resource.name}
          </a>{' '}
          version {r.resource.version}
        </dd>
        <dt>Triggered by</dt>
        <dd>
          {r.rerunOf && (
            <div>
              <a href={href(['runs', r.rerunOf])}>a re-run of {r.rerunOf}</a>
            </div>
          )}
          <Origin run={r} />
        </dd>
        {r.reruns?.length ? (
          <>
            <dt>Re-run as</dt>
            <dd>
              {r.reruns.map((x) => (
                <a key={x} href={href(['runs', x])} class="mono">
                  {x}{' '}
                </a>
              ))}
            </dd>
          </>
        ) : null}
        {r.group && (
          <>
            <dt>Concurrency group</dt>
            <dd>{r.group}</dd>
          </>
        )}
        <dt>Created</dt>
        <dd title={r.createdAt}>{formatAge(r.createdAt, now)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(elapsed(r.startedAt, r.finishedAt, r.durationMs, now))}</dd>
      </dl>

      <h2>Steps</h2>
      <StepGraph
        label="Step graph of the run"
        steps={r.steps.map((s) => ({ id: s.id, label: s.id, needs: s.needs, status: s.status }))}
        selected={selected}
        onSelect={(s) => select(s === selected ? undefined : s)}
      />
      <StepsTable run={r} now={now} selected={selected} />

      <h2>Timeline</h2>
      <Timeline run={r} now={now} />

      <Artifacts run={r} now={now} />
      {r.reports?.length ? <Reports reports={r.reports} now={now} /> : null}
    </>
  );
}

/**
 * What made the run's resource version: a webhook delivery (the version's `trigger`, set only by
 * the hook endpoint) or a schedule's tick (its metadata); else a client wrote the version.
 */
function Origin({ run: r }: { run: Run }) {
  const { type, name, version } = r.resource;
  const v = useLoad((s) => api.get<Resource>(`/resources/${encodeURIComponent(type)}/${encodeURIComponent(name)}/${version}`, s), [type, name, version]);
  const origin = v.data && originOf(v.data);
  if (origin?.kind === 'trigger') {
    const o = origin.origin;
    return (
      <div data-testid="origin" title={o.message}>
        trigger <a href={href(['triggers', o.trigger])}>{o.trigger}</a>: {o.event} of <code>{refName(o.ref)}</code> at{' '}
        <code class="commit" title={o.commit}>
          {shortCommit(o.commit)}
        </code>
        {o.sender && <> by {o.sender}</>}
      </div>
    );
  }
  if (origin?.kind === 'schedule') {
    return (
      <div data-testid="origin">
        Scheduled by <a href={href(['schedules', origin.schedule])}>{origin.schedule}</a>
        {origin.tickAt && (
          <span class="muted">
            {' '}
            (the tick due <time dateTime={origin.tickAt}>{formatTime(origin.tickAt)}</time>
            {origin.catchUp ? ', caught up after no gateway ran' : ''})
          </span>
        )}
      </div>
    );
  }
  return r.rerunOf ? null : <>version {version} of the resource</>;
}

interface ArtifactInfo {
  name: string;
  step: string;
  size: number;
  sha256: string;
  contentType: string;
  created: string;
}

/** The files the run's steps kept, listed again as steps end (a step uploads its artifacts before it reports). */
function Artifacts({ run: r, now }: { run: Run; now: number }) {
  const ended = r.steps.filter((s) => s.finishedAt).length;
  const list = useLoad((s) => api.get<ArtifactInfo[]>(`/runs/${encodeURIComponent(r.id)}/artifacts`, s), [r.id, ended, r.status]);
  const [error, setError] = useState<Error | undefined>();
  if (list.error && !list.data) return <ErrorBox error={list.error} title="Could not list the artifacts" />;
  if (!list.data?.length) return null;
  return (
    <section aria-labelledby="artifacts">
      <h2 id="artifacts">Artifacts</h2>
      <table class="list" aria-label="Artifacts of the run">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Step</th>
            <th scope="col">Size</th>
            <th scope="col">SHA-256</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {list.data.map((a) => (
            <tr key={a.name} data-artifact={a.name}>
              <th scope="row">
                <a
                  href={artifactPath(r.id, a.name)}
                  download={a.name.split('/').pop()}
                  onClick={(e) => {
                    // A link sends no token: the bytes come through fetch with it.
                    e.preventDefault();
                    setError(undefined);
                    downloadFile(artifactPath(r.id, a.name), a.name.split('/').pop() ?? 'artifact').catch((err: Error) => setError(err));
                  }}
                >
                  {a.name}
                </a>
              </th>
              <td>
                <a href={href(['runs', r.id], { step: a.step })}>{a.step}</a>
              </td>
              <td title={`${a.size} bytes`}>{formatBytes(a.size)}</td>
              <td class="mono" title={a.sha256}>
                {a.sha256.slice(0, 12)}…
              </td>
              <td title={a.created}>{formatAge(a.created, now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && <ErrorBox error={error} title="The download failed" />}
    </section>
  );
}

const REPORT_TONE = { delivered: 'succeeded', retrying: 'retrying', failed: 'failed' } as const;

/** Commit statuses and notifications posted for the run, and those given up on. */
function Reports({ reports, now }: { reports: RunReport[]; now: number }) {
  return (
    <section aria-labelledby="reports">
      <h2 id="reports">Reports</h2>
      <table class="list" aria-label="Reports of the run">
        <thead>
          <tr>
            <th scope="col">Kind</th>
            <th scope="col">Event</th>
            <th scope="col">Target</th>
            <th scope="col">Outcome</th>
            <th scope="col">Attempts</th>
            <th scope="col">When</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          {reports.map((x, i) => (
            <tr key={`${x.kind}-${x.target}-${x.event}-${i}`}>
              <td>{x.kind === 'status' ? 'commit status' : 'notification'}</td>
              <td>{x.event}</td>
              <td class="mono message">{x.target}</td>
              <td>
                <StatusBadge status={x.outcome} tone={REPORT_TONE[x.outcome]} />
              </td>
              <td>{x.attempts}</td>
              <td title={x.at}>{formatAge(x.at, now)}</td>
              <td class="message">
                {x.error ?? ''}
                {x.outcome === 'retrying' && x.next ? ` (next try ${new Date(x.next).toLocaleTimeString()})` : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function StepsTable({ run, now, selected }: { run: Run; now: number; selected?: string }) {
  return (
    <table class="list steps" aria-label="Steps of the run">
      <thead>
        <tr>
          <th scope="col">Step</th>
          <th scope="col">Driver</th>
          <th scope="col">Status</th>
          <th scope="col">Attempts</th>
          <th scope="col">Agent</th>
          <th scope="col">Machine</th>
          <th scope="col">Duration</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody>
        {run.steps.map((s) => (
          <tr key={s.id} data-step={s.id} class={selected === s.id ? 'selected' : ''}>
            <th scope="row">
              <a href={href(['runs', run.id], { step: s.id })}>{s.id}</a>
              {s.always && <span class="tag">always</span>}
              {s.reusedFrom && <span class="tag">carried over</span>}
            </th>
            <td>{s.driver}</td>
            <td>
              <StatusBadge status={s.status} />
              {s.status === 'waiting' && <ApprovalButtons run={run} step={s} />}
            </td>
            <td>{s.attempts}</td>
            <td class="mono">{s.agent ?? '—'}</td>
            <td>{s.machine ?? '—'}</td>
            <td>{formatDuration(elapsed(s.startedAt, s.finishedAt, s.durationMs, now))}</td>
            <td class="message">{s.message ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const run = async <T,>(f: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await f();
    } catch (e) {
      setError(e as Error);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function RunActions({ run }: { run: Run }) {
  const a = useAction();
  const ended = TERMINAL.has(run.status);
  const somethingFailed = run.steps.some((s) => s.status === 'failed' || s.status === 'cancelled' || s.status === 'skipped');
  const rerun = async (failed: boolean) => {
    const r = await a.run(() => api.post<{ runid: string }>(`/runs/${run.id}/rerun`, { failed }));
    if (r) location.hash = href(['runs', r.runid]);
  };
  return (
    <>
      {!ended && (
        <button type="button" class="danger" disabled={a.busy || run.cancelRequested} onClick={() => a.run(() => api.post(`/runs/${run.id}/cancel`))}>
          {run.cancelRequested ? 'Cancelling…' : 'Cancel'}
        </button>
      )}
      {ended && (
        <button type="button" disabled={a.busy} onClick={() => rerun(false)}>
          Re-run
        </button>
      )}
      {ended && somethingFailed && (
        <button type="button" disabled={a.busy} onClick={() => rerun(true)}>
          Re-run failed
        </button>
      )}
      {a.error && <ErrorBox error={a.error} title="The action failed" />}
    </>
  );
}

function ApprovalButtons({ run, step }: { run: Run; step: StepRun }) {
  const session = useSession();
  const a = useAction();
  const [comment, setComment] = useState('');
  if (!may(session, 'write')) return <span class="muted"> waiting for approval</span>;
  const decide = (verb: 'approve' | 'reject') => a.run(() => api.post(`/runs/${run.id}/steps/${encodeURIComponent(step.id)}/${verb}`, comment ? { comment } : {}));
  return (
    <div class="approval">
      <label>
        <span class="sr-only">Comment on the decision for step {step.id}</span>
        <input type="text" placeholder="comment (optional)" value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} />
      </label>
      <button type="button" class="primary" disabled={a.busy} onClick={() => decide('approve')}>
        Approve
      </button>
      <button type="button" class="danger" disabled={a.busy} onClick={() => decide('reject')}>
        Reject
      </button>
      {a.error && <ErrorBox error={a.error} title="The decision was not taken" />}
    </div>
  );
}
