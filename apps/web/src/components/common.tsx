import type { ComponentChildren } from 'preact';
import type { RunStatus, StepStatus } from '@conveyor/contracts/models';

export function StatusBadge({ status }: { status: RunStatus | StepStatus }) {
  return (
    <span class={`status status-${status}`} data-status={status}>
      <span class="status-dot" aria-hidden="true" />
      {status}
    </span>
  );
}

export function ErrorBox({ error, title }: { error: Error | string; title?: string }) {
  const e = typeof error === 'string' ? { message: error } : error;
  const details = (e as { details?: string[] }).details ?? [];
  return (
    <div class="error-box" role="alert">
      <strong>{title ?? 'Something went wrong'}:</strong> {e.message}
      {details.length > 0 && (
        <ul>
          {details.map((d) => (
            <li key={d}>{d}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function PageHeader({ title, children }: { title: ComponentChildren; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1>{title}</h1>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}

export function Json({ value, label }: { value: unknown; label: string }) {
  return (
    <pre class="json" aria-label={label} tabIndex={0}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A loaded list's four states: failed, loading, empty, or its items drawn by `children`. */
export function ListOf<T>({ state, what, empty, children }: { state: { data?: T[]; error?: Error }; what: string; empty: ComponentChildren; children: (items: T[]) => ComponentChildren }) {
  if (state.error) return <ErrorBox error={state.error} title={`Could not load the ${what}`} />;
  if (!state.data) return <Loading what={what} />;
  if (!state.data.length) return <Empty>{empty}</Empty>;
  return <>{children(state.data)}</>;
}
