import { Validator } from '@cfworker/json-schema';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { JsonObject, Pipeline, Resource, ResourceDefinition } from '@conveyor/contracts/models';
import { ApiError, api, request } from '../api/client';
import { ErrorBox, Loading, PageHeader } from '../components/common';
import { useLoad, useTitle } from '../hooks';
import { href, type Route } from '../lib/router';
import { fieldText, parseField, serverFieldErrors, specFields, validatorFieldErrors, type FieldErrors, type SpecField } from '../lib/spec-form';

/**
 * Trigger a pipeline: pick the pipeline and the resource (a new one, or a new version of one
 * that exists, its spec filled in to edit), fill the spec in a form made from the resource
 * definition's JSON Schema and checked against it as one types; the server's 400 details land
 * beside the fields they are about. A new resource is POSTed, a new version PUT; both start a run.
 */
export function TriggerPage({ route }: { route: Route }) {
  useTitle('Trigger a run');
  const pipelines = useLoad((s) => api.get<Pipeline[]>('/pipelines', s), []);
  const [pipelineName, setPipelineName] = useState(route.query.get('pipeline') ?? '');
  const pipeline = pipelines.data?.find((p) => p.name === pipelineName);
  const definition = useLoad(
    async (s) => (pipeline ? api.get<ResourceDefinition>(`/resource-definitions/${encodeURIComponent(pipeline.resource)}`, s) : undefined),
    [pipeline?.resource],
  );
  const existing = useLoad(async (s) => (pipeline ? api.get<Resource[]>(`/resources?resource=${encodeURIComponent(pipeline.resource)}`, s) : []), [pipeline?.resource]);
  const [name, setName] = useState(route.query.get('resource') ?? '');
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [jsonMode, setJsonMode] = useState(false);
  const [jsonText, setJsonText] = useState('{}');
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!pipelineName && pipelines.data?.length) setPipelineName(pipelines.data[0].name);
  }, [pipelines.data]);

  const fields = useMemo(() => specFields(definition.data?.schema), [definition.data]);
  const current = existing.data?.find((r) => r.name === name);
  const validator = useMemo(() => (definition.data ? new Validator(definition.data.schema as object, '7', false) : undefined), [definition.data]);

  // An existing resource's latest spec is the starting point.
  useEffect(() => {
    const spec = current?.spec ?? {};
    setTexts(Object.fromEntries(fields.map((f) => [f.name, fieldText(f.kind, spec[f.name])])));
    setJsonText(JSON.stringify(spec, null, 2));
    setServerErrors({});
  }, [current?.version, current?.name, fields]);

  // The spec the form stands for, and what is wrong with it before anything is sent.
  const { spec, local } = useMemo(() => {
    const errors: FieldErrors = {};
    let spec: JsonObject = {};
    if (jsonMode || !fields.length) {
      try {
        const v = JSON.parse(jsonText) as unknown;
        if (!v || typeof v !== 'object' || Array.isArray(v)) errors[''] = ['the spec must be a JSON object'];
        else spec = v as JsonObject;
      } catch (e) {
        errors[''] = [`the spec is not valid JSON (${(e as Error).message})`];
      }
    } else {
      spec = { ...(current?.spec ?? {}) };
      for (const f of fields) {
        const r = parseField(f.kind, texts[f.name] ?? '');
        if (r.error) errors[f.name] = [r.error];
        else if (r.value === undefined) delete spec[f.name];
        else spec[f.name] = r.value;
      }
    }
    if (!Object.keys(errors).length && validator) {
      const out = validator.validate(spec);
      if (!out.valid) Object.assign(errors, validatorFieldErrors(out.errors, fields.map((f) => f.name)));
    }
    return { spec, local: errors };
  }, [jsonMode, jsonText, texts, fields, validator, current]);

  const nameError = name && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name) ? 'lowercase letters, digits and dashes, at most 63' : undefined;
  const invalid = Object.keys(local).length > 0 || !name || !!nameError || !pipeline;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (invalid || !pipeline) return;
    setBusy(true);
    setFailure(undefined);
    setServerErrors({});
    try {
      const body = current
        ? await request<{ runid?: string }>('PUT', `/resources/${encodeURIComponent(pipeline.resource)}/${encodeURIComponent(name)}`, { spec, pipeline: pipeline.name })
        : await request<{ runid?: string }>('POST', '/resources', { name, resource: pipeline.resource, pipeline: pipeline.name, spec });
      if (body.body.runid) location.hash = href(['runs', body.body.runid]);
      else setFailure(new Error('the resource was stored but no run started'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && err.details.length) {
        setServerErrors(serverFieldErrors(err.details, jsonMode ? [] : fields.map((f) => f.name)));
        setFailure(new ApiError(400, err.message));
      } else setFailure(err as Error);
    } finally {
      setBusy(false);
    }
  };

  if (pipelines.error) return <ErrorBox error={pipelines.error} title="Could not load the pipelines" />;
  if (!pipelines.data) return <Loading what="pipelines" />;
  const errorsOf = (field: string) => [...(serverErrors[field] ?? []), ...(local[field] ?? [])];

  return (
    <>
      <PageHeader title="Trigger a run" />
      <form class="trigger" onSubmit={submit} aria-label="Trigger a run" noValidate>
        <label>
          Pipeline
          <select value={pipelineName} onChange={(e) => setPipelineName((e.target as HTMLSelectElement).value)} required>
            {pipelines.data.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name} (builds {p.resource})
              </option>
            ))}
          </select>
        </label>
        <label>
          Resource name
          <input
            type="text"
            list="resource-names"
            value={name}
            required
            aria-invalid={!!nameError}
            aria-describedby="resource-name-help"
            onInput={(e) => setName((e.target as HTMLInputElement).value.trim())}
          />
          <datalist id="resource-names">
            {(existing.data ?? []).map((r) => (
              <option key={r.name} value={r.name} />
            ))}
          </datalist>
          <small id="resource-name-help" class={nameError ? 'field-error' : 'muted'}>
            {nameError ?? (current ? `exists: this makes version ${current.version + 1}, starting from version ${current.version}'s spec` : 'a new resource (version 1)')}
          </small>
        </label>
        {definition.error && <ErrorBox error={definition.error} title="Could not load the resource definition" />}
        {definition.data && (
          <fieldset>
            <legend>
              Spec of a <a href={href(['definitions', definition.data.name])}>{definition.data.name}</a>
            </legend>
            {fields.length > 0 && (
              <label class="inline">
                <input type="checkbox" checked={jsonMode} onChange={(e) => setJsonMode((e.target as HTMLInputElement).checked)} /> Edit as JSON
              </label>
            )}
            {(jsonMode || !fields.length) ? (
              <Field id="spec-json" label="Spec (JSON)" errors={errorsOf('')}>
                <textarea id="spec-json" rows={10} value={jsonText} onInput={(e) => setJsonText((e.target as HTMLTextAreaElement).value)} aria-invalid={errorsOf('').length > 0} />
              </Field>
            ) : (
              fields.map((f) => <SpecInput key={f.name} field={f} text={texts[f.name] ?? ''} errors={errorsOf(f.name)} onText={(t) => setTexts({ ...texts, [f.name]: t })} />)
            )}
            {!jsonMode && fields.length > 0 && errorsOf('').length > 0 && (
              <ul class="field-error" role="alert">
                {errorsOf('').map((m) => (
                  <li key={m}>{m}</li>
                ))}
              </ul>
            )}
          </fieldset>
        )}
        {failure && <ErrorBox error={failure} title="The run was not started" />}
        <button type="submit" class="primary" disabled={busy || invalid}>
          {busy ? 'Starting…' : 'Start the run'}
        </button>
      </form>
    </>
  );
}

function Field({ id, label, errors, children, help }: { id: string; label: string; errors: string[]; children: preact.ComponentChildren; help?: string }) {
  return (
    <div class="field" data-field={id}>
      <label for={id}>{label}</label>
      {children}
      {help && <small class="muted">{help}</small>}
      {errors.length > 0 && (
        <ul class="field-error" id={`${id}-errors`} role="alert" data-testid={`errors-${id}`}>
          {errors.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function SpecInput({ field, text, errors, onText }: { field: SpecField; text: string; errors: string[]; onText: (t: string) => void }) {
  const id = `spec-${field.name}`;
  const common = { id, 'aria-invalid': errors.length > 0, 'aria-describedby': errors.length ? `${id}-errors` : undefined };
  const label = `${field.name}${field.required ? ' (required)' : ''}`;
  let input;
  switch (field.kind) {
    case 'boolean':
      input = <input type="checkbox" {...common} checked={text === 'true'} onChange={(e) => onText((e.target as HTMLInputElement).checked ? 'true' : 'false')} />;
      break;
    case 'enum':
      input = (
        <select {...common} value={text} onChange={(e) => onText((e.target as HTMLSelectElement).value)}>
          <option value="">—</option>
          {field.options!.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      );
      break;
    case 'json':
      input = <textarea {...common} rows={4} value={text} onInput={(e) => onText((e.target as HTMLTextAreaElement).value)} />;
      break;
    default:
      input =
        field.kind === 'string' ? (
          <input type="text" {...common} value={text} onInput={(e) => onText((e.target as HTMLInputElement).value)} />
        ) : (
          <input type="number" step={field.kind === 'integer' ? 1 : 'any'} {...common} value={text} onInput={(e) => onText((e.target as HTMLInputElement).value)} />
        );
  }
  return (
    <Field id={id} label={label} errors={errors} help={field.description ?? (field.kind === 'json' ? 'JSON' : undefined)}>
      {input}
    </Field>
  );
}
