import type { HookDeliveryOutcome, RunStatus, Trigger } from '@conveyor/contracts/models';
import { ApiError, api } from '../api/client';
import { ConfirmButton, CopyButton, ErrorBox, Json, ListOf, Loading, PageHeader, StatusBadge } from '../components/common';
import { may, useLoad, useNow, useSession, useTitle } from '../hooks';
import { formatAge } from '../lib/format';
import { hookUrl } from '../lib/origin';
import { href } from '../lib/router';

/** GET /triggers answers these: the stored trigger, the path its forge posts to, its last delivery. */
export type TriggerView = Omit<Trigger, 'last'> & { hook: string; last: HookDeliveryOutcome | null };

const OUTCOME_TONE: Record<HookDeliveryOutcome['outcome'], RunStatus | 'skipped'> = { started: 'succeeded', ignored: 'skipped', rejected: 'failed' };

/** Webhook triggers (`#/triggers`); the form that starts a run by hand is `#/trigger`. */
export function TriggersPage() {
  useTitle('Webhook triggers');
  const now = useNow(5000);
  const list = useLoad((s) => api.get<TriggerView[]>('/triggers', s), []);
  return (
    <>
      <PageHeader title="Webhook triggers">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">A signed event from a forge (or a git server's post-receive hook) that matches a trigger makes a new version of its resource and starts a run.</p>
      <ListOf state={list} what="triggers" empty={<>No triggers: POST one to /triggers.</>}>
        {(items) => (
          <table class="list" aria-label="Webhook triggers">
            <thead>
              <tr>
                <th scope="col">Trigger</th>
                <th scope="col">Source</th>
                <th scope="col">Events</th>
                <th scope="col">Branches</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Hook URL</th>
                <th scope="col">Last delivery</th>
              </tr>
            </thead>
            <tbody>
              {items.map((t) => (
                <tr key={t.name} data-trigger={t.name}>
                  <th scope="row">
                    <a href={href(['triggers', t.name])}>{t.name}</a>
                  </th>
                  <td>{t.source}</td>
                  <td>{t.events.join(', ')}</td>
                  <td>{t.branches?.length ? t.branches.join(', ') : <span class="muted">every branch</span>}</td>
                  <td>
                    <a href={href(['pipelines', t.pipeline])}>{t.pipeline}</a>
                  </td>
                  <td>
                    <HookUrl trigger={t} />
                  </td>
                  <td class="last">
                    <LastDelivery last={t.last} now={now} />
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

export function WebhookTriggerPage({ name }: { name: string }) {
  useTitle(`Trigger ${name}`);
  const session = useSession();
  const now = useNow(5000);
  const t = useLoad((signal) => api.get<TriggerView>(`/triggers/${encodeURIComponent(name)}`, signal), [name]);
  if (t.error) return <ErrorBox error={t.error} title={t.error instanceof ApiError && t.error.status === 404 ? 'No such trigger' : 'Could not load the trigger'} />;
  if (!t.data) return <Loading what="the trigger" />;
  const d = t.data;
  return (
    <>
      <PageHeader title={`Trigger ${d.name}`}>
        <a class="button" href={href(['runs'], { pipeline: d.pipeline })}>
          Runs of its pipeline
        </a>
        {may(session, 'admin') && (
          <ConfirmButton
            label="Delete"
            question={<>Delete trigger {d.name}? Its hook answers 404 from then on; the runs it started stay.</>}
            confirm="Delete the trigger"
            onConfirm={async () => {
              await api.del(`/triggers/${encodeURIComponent(d.name)}`);
              location.hash = href(['triggers']);
            }}
          />
        )}
      </PageHeader>
      <dl class="facts">
        <dt>Hook URL</dt>
        <dd>
          <HookUrl trigger={d} />
          <div class="muted">
            The forge's webhook address, with the value of secret <code>{d.secret}</code> as its secret{d.source === 'generic' ? ' (X-Conveyor-Signature-256)' : ''}.
          </div>
        </dd>
        <dt>Source</dt>
        <dd>{d.source}</dd>
        <dt>Repository</dt>
        <dd>{d.repository ?? <span class="muted">any</span>}</dd>
        <dt>Events</dt>
        <dd>{d.events.join(', ')}</dd>
        <dt>Branches</dt>
        <dd>{d.branches?.length ? d.branches.map((b) => <code key={b}>{b} </code>) : <span class="muted">every branch</span>}</dd>
        <dt>Pipeline</dt>
        <dd>
          <a href={href(['pipelines', d.pipeline])}>{d.pipeline}</a>
        </dd>
        <dt>Resource</dt>
        <dd>
          <code>{d.resourceName}</code> of type <a href={href(['definitions', d.resource])}>{d.resource}</a>
        </dd>
        <dt>Commit status</dt>
        <dd data-testid="status-target">
          {d.status ? (
            <>
              {d.status.forge ?? d.source} API <code>{d.status.api}</code>
              {d.status.project && (
                <>
                  , project <code>{d.status.project}</code>
                </>
              )}
              , context <code>{d.status.context ?? `conveyor/${d.pipeline}`}</code>, token from secret <code>{d.status.token}</code>
            </>
          ) : (
            <span class="muted">not reported</span>
          )}
        </dd>
        <dt>Last delivery</dt>
        <dd class="last">
          <LastDelivery last={d.last} now={now} detail />
        </dd>
        <dt>Created</dt>
        <dd title={d.createdAt}>{formatAge(d.createdAt, now)}</dd>
        <dt>Updated</dt>
        <dd title={d.updatedAt}>{formatAge(d.updatedAt, now)}</dd>
      </dl>
      <h2>Spec</h2>
      <p class="muted">Merged under what each event gives (repository, ref, commit, sender, message).</p>
      <Json value={d.spec} label={`Spec of trigger ${d.name}`} />
    </>
  );
}

function HookUrl({ trigger }: { trigger: TriggerView }) {
  const url = hookUrl(location.origin, trigger.hook);
  return (
    <span class="hook-url">
      <code data-testid="hook-url">{url}</code>
      <CopyButton text={url} label={`Copy the hook URL of ${trigger.name}`} />
    </span>
  );
}

function LastDelivery({ last, now, detail }: { last: HookDeliveryOutcome | null; now: number; detail?: boolean }) {
  if (!last) return <span class="muted">none yet</span>;
  return (
    <>
      <StatusBadge status={last.outcome} tone={OUTCOME_TONE[last.outcome]} /> <span title={last.at}>{formatAge(last.at, now)}</span>
      {detail && last.event && <span class="muted"> ({last.event})</span>}
      {last.runid && (
        <div>
          <a href={href(['runs', last.runid])} class="mono">
            {last.runid}
          </a>
          {last.resource && last.version !== undefined && (
            <span class="muted">
              {' '}
              {last.resource} version {last.version}
            </span>
          )}
        </div>
      )}
      {last.reason && <div class="message">{last.reason}</div>}
      {detail && <div class="muted mono">delivery {last.delivery}</div>}
    </>
  );
}
