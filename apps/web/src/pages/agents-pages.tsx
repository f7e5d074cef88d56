import { useEffect } from 'preact/hooks';
import type { AgentInfo } from '@conveyor/contracts/models';
import { api, query } from '../api/client';
import { ListOf, PageHeader } from '../components/common';
import { useLoad, useNow, useTitle } from '../hooks';
import { formatAge, formatBytes } from '../lib/format';
import { href, type Route } from '../lib/router';

/** Agents as they announce themselves (heartbeats), polled every few seconds; machines summed up from them. */
export function AgentsPage() {
  useTitle('Agents and machines');
  const now = useNow();
  const agents = useLoad((s) => api.get<Array<AgentInfo & { draining?: boolean }>>('/drivers', s), []);
  useEffect(() => {
    const t = setInterval(agents.reload, 3000);
    return () => clearInterval(t);
  }, [agents.reload]);
  const machines = new Map<string, { agents: number; running: number; capacity: number }>();
  for (const a of agents.data ?? []) {
    const m = machines.get(a.machine) ?? { agents: 0, running: 0, capacity: 0 };
    m.agents++;
    m.running += a.running.length;
    m.capacity += a.concurrency;
    machines.set(a.machine, m);
  }
  return (
    <>
      <PageHeader title="Agents and machines" />
      <ListOf state={agents} what="agents" empty={<>No live agents: start a driver (npm start starts the built-in ones).</>}>
        {(items) => (
          <>
            <h2>Machines</h2>
            <table class="list" aria-label="Machines">
              <thead>
                <tr>
                  <th scope="col">Machine</th>
                  <th scope="col">Agents</th>
                  <th scope="col">Running steps</th>
                  <th scope="col">Capacity</th>
                </tr>
              </thead>
              <tbody>
                {[...machines].map(([name, m]) => (
                  <tr key={name}>
                    <th scope="row">{name}</th>
                    <td>{m.agents}</td>
                    <td>{m.running}</td>
                    <td>{m.capacity}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <h2>Agents</h2>
            <table class="list" aria-label="Agents">
              <thead>
                <tr>
                  <th scope="col">Agent</th>
                  <th scope="col">Drivers</th>
                  <th scope="col">Machine</th>
                  <th scope="col">Host / pid</th>
                  <th scope="col">Running</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {items.map((a) => (
                  <tr key={a.id} data-agent={a.id}>
                    <th scope="row" class="mono">
                      {a.id}
                    </th>
                    <td>{a.drivers.join(', ')}</td>
                    <td>{a.machine}</td>
                    <td>
                      {a.host} / {a.pid}
                    </td>
                    <td>
                      {a.running.length} of {a.concurrency}
                      {a.running.map((r) => (
                        <div key={`${r.runId}/${r.stepId}`}>
                          <a href={href(['runs', r.runId], { step: r.stepId })}>
                            {r.stepId} of {r.runId.slice(-6)}
                          </a>{' '}
                          <span class="muted">{formatAge(r.since, now).replace(' ago', '')}</span>
                        </div>
                      ))}
                    </td>
                    <td title={a.lastHeartbeat}>{formatAge(a.lastHeartbeat, now)}</td>
                    <td>{a.draining ? <span class="tag warn">draining</span> : 'serving'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </ListOf>
    </>
  );
}

interface DeadLetterView {
  seq: number;
  at: string;
  driver: string;
  subject: string;
  reason: string;
  agent: string;
  payloadBytes: number;
  preview: string;
}

export function DeadLettersPage({ route }: { route: Route }) {
  useTitle('Dead letters');
  const now = useNow(5000);
  const driver = route.query.get('driver') ?? undefined;
  const list = useLoad((s) => api.get<DeadLetterView[]>(`/dead-letters${query({ driver, limit: 100 })}`, s), [driver]);
  return (
    <>
      <PageHeader title={driver ? `Dead letters of ${driver}` : 'Dead letters'}>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </PageHeader>
      <p class="muted">Messages a driver could not read, terminated with the reason (the newest 100).</p>
      <ListOf state={list} what="dead letters" empty={<>No dead letters.</>}>
        {(items) => (
          <table class="list" aria-label="Dead letters">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Driver</th>
                <th scope="col">Reason</th>
                <th scope="col">Subject</th>
                <th scope="col">Payload</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.seq}>
                  <td title={d.at}>{formatAge(d.at, now)}</td>
                  <td>
                    <a href={href(['dead-letters'], { driver: d.driver })}>{d.driver}</a>
                    <div class="muted mono">{d.agent}</div>
                  </td>
                  <td class="message">{d.reason}</td>
                  <td class="mono">{d.subject}</td>
                  <td>
                    <details>
                      <summary>{formatBytes(d.payloadBytes)}</summary>
                      <pre class="preview">{d.preview}</pre>
                    </details>
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

export function SecretsPage() {
  useTitle('Secrets');
  const now = useNow(5000);
  const list = useLoad((s) => api.get<Array<{ name: string; updatedAt?: string }>>('/secrets', s), []);
  return (
    <>
      <PageHeader title="Secrets" />
      <p class="muted">Names only: values never leave the server. Set them with PUT /secrets/&lt;name&gt;.</p>
      <ListOf state={list} what="secrets" empty={<>No secrets.</>}>
        {(items) => (
          <table class="list" aria-label="Secrets">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={s.name}>
                  <th scope="row" class="mono">
                    {s.name}
                  </th>
                  <td title={s.updatedAt}>{formatAge(s.updatedAt, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ListOf>
    </>
  );
}
