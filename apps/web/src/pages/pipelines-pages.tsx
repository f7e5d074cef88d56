import type { Pipeline, ResourceDefinition } from '@conveyor/contracts/models';
import { api } from '../api/client';
import { ErrorBox, Json, ListOf, Loading, PageHeader } from '../components/common';
import { StepGraph } from '../components/step-graph';
import { may, useLoad, useSession, useTitle } from '../hooks';
import { resolveNeeds } from '../lib/graph-layout';
import { href } from '../lib/router';

export function PipelinesPage() {
  useTitle('Pipelines');
  const session = useSession();
  const pipelines = useLoad((s) => api.get<Pipeline[]>('/pipelines', s), []);
  return (
    <>
      <PageHeader title="Pipelines" />
      <ListOf state={pipelines} what="pipelines" empty={<>No pipelines yet: POST one to /pipelines.</>}>
        {(items) => (
          <table class="list" aria-label="Pipelines">
            <thead>
              <tr>
                <th scope="col">Pipeline</th>
                <th scope="col">Resource</th>
                <th scope="col">Steps</th>
                <th scope="col">Description</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.name}>
                  <th scope="row">
                    <a href={href(['pipelines', p.name])}>{p.name}</a>
                  </th>
                  <td>
                    <a href={href(['definitions', p.resource])}>{p.resource}</a>
                  </td>
                  <td>{p.steps.length}</td>
                  <td>{p.description}</td>
                  <td>
                    <a href={href(['runs'], { pipeline: p.name })}>Runs</a>
                    {may(session, 'write') && (
                      <>
                        {' · '}
                        <a href={href(['trigger'], { pipeline: p.name })}>Trigger</a>
                      </>
                    )}
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

export function PipelinePage({ name }: { name: string }) {
  useTitle(`Pipeline ${name}`);
  const session = useSession();
  const p = useLoad((s) => api.get<Pipeline>(`/pipelines/${encodeURIComponent(name)}`, s), [name]);
  if (p.error) return <ErrorBox error={p.error} title="Could not load the pipeline" />;
  if (!p.data) return <Loading what="the pipeline" />;
  const steps = resolveNeeds(p.data.steps);
  return (
    <>
      <PageHeader title={`Pipeline ${p.data.name}`}>
        <a class="button" href={href(['runs'], { pipeline: name })}>
          Its runs
        </a>
        {may(session, 'write') && (
          <a class="button primary" href={href(['trigger'], { pipeline: name })}>
            Trigger a run
          </a>
        )}
      </PageHeader>
      <p>{p.data.description}</p>
      <dl class="facts">
        <dt>Builds resources of</dt>
        <dd>
          <a href={href(['definitions', p.data.resource])}>{p.data.resource}</a>
        </dd>
        <dt>Fail fast</dt>
        <dd>{p.data.failFast === false ? 'no' : 'yes'}</dd>
        {p.data.concurrency && (
          <>
            <dt>Concurrency group</dt>
            <dd>
              <code>{p.data.concurrency.group}</code> {p.data.concurrency.cancelInProgress ? '(cancels the run in progress)' : '(queues)'}
            </dd>
          </>
        )}
      </dl>
      <h2>Graph</h2>
      <StepGraph
        label={`Step graph of pipeline ${name}`}
        steps={steps.map((s) => ({ id: s.id, label: s.id, needs: s.needs, note: `${s.approval ? 'approval' : s.driver}${s.matrix ? ', matrix' : ''}${s.always ? ', always' : ''}` }))}
      />
      <h2>Steps</h2>
      <table class="list" aria-label="Steps of the pipeline">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Driver</th>
            <th scope="col">Needs</th>
            <th scope="col">Timeout</th>
            <th scope="col">Retries</th>
            <th scope="col">Runs when</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((s) => (
            <tr key={s.id}>
              <th scope="row">
                {s.id} {s.name !== s.id && <span class="muted">{s.name}</span>}
              </th>
              <td>{s.approval ? 'approval (a person)' : s.driver}</td>
              <td>{s.needs.join(', ') || '—'}</td>
              <td>{s.timeout ? `${s.timeout} s` : 'default'}</td>
              <td>{s.retries ?? 0}</td>
              <td>
                {s.always ? 'always' : (s.when?.status ?? ['success']).join(', ')}
                {s.when?.expr && (
                  <>
                    {' if '}
                    <code>{s.when.expr}</code>
                  </>
                )}
                {s.matrix && <span class="tag">matrix</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <details>
        <summary>The pipeline as JSON</summary>
        <Json value={p.data} label="Pipeline JSON" />
      </details>
    </>
  );
}

export function DefinitionsPage() {
  useTitle('Resource definitions');
  const defs = useLoad((s) => api.get<ResourceDefinition[]>('/resource-definitions', s), []);
  return (
    <>
      <PageHeader title="Resource definitions" />
      <ListOf state={defs} what="definitions" empty={<>No resource definitions yet.</>}>
        {(items) => (
          <table class="list" aria-label="Resource definitions">
            <thead>
              <tr>
                <th scope="col">Definition</th>
                <th scope="col">Version</th>
                <th scope="col">Description</th>
                <th scope="col">
                  <span class="sr-only">Links</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.name}>
                  <th scope="row">
                    <a href={href(['definitions', d.name])}>{d.name}</a>
                  </th>
                  <td>{d.version}</td>
                  <td>{d.description}</td>
                  <td>
                    <a href={href(['resources'], { type: d.name })}>Resources</a>
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

export function DefinitionPage({ name }: { name: string }) {
  useTitle(`Definition ${name}`);
  const d = useLoad((s) => api.get<ResourceDefinition>(`/resource-definitions/${encodeURIComponent(name)}`, s), [name]);
  if (d.error) return <ErrorBox error={d.error} title="Could not load the definition" />;
  if (!d.data) return <Loading what="the definition" />;
  return (
    <>
      <PageHeader title={`Resource definition ${d.data.name}`}>
        <a class="button" href={href(['resources'], { type: name })}>
          Its resources
        </a>
      </PageHeader>
      <p>{d.data.description}</p>
      <dl class="facts">
        <dt>Version</dt>
        <dd>{d.data.version}</dd>
        <dt>Updated</dt>
        <dd>{d.data.updatedAt}</dd>
      </dl>
      <h2>Schema of a resource's spec</h2>
      <Json value={d.data.schema} label="JSON Schema" />
    </>
  );
}
