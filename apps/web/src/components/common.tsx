import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { RunStatus, StepStatus } from '@conveyor/contracts/models';

/**
 * A status as a coloured badge. Outcomes that are not a run's or a step's (a delivery
 * `ignored`, a report `delivered`) take the colour of the status named by `tone`.
 */
export function StatusBadge({ status, tone }: { status: RunStatus | StepStatus; tone?: undefined } | { status: string; tone: RunStatus | StepStatus }) {
  return (
    <span class={`status status-${tone ?? status}`} data-status={status}>
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

/**
 * Copies `text` to the clipboard and says so. The Clipboard API needs a secure context (https or
 * loopback); a dashboard served over plain http elsewhere falls back to a selected text area.
 */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      if (navigator.clipboard && isSecureContext) await navigator.clipboard.writeText(text);
      else copyBySelection(text);
      setState('copied');
    } catch {
      setState('failed');
    }
    setTimeout(() => setState('idle'), 2000);
  };
  return (
    <>
      <button type="button" class="copy" aria-label={label} onClick={() => void copy()}>
        {state === 'copied' ? 'Copied' : 'Copy'}
      </button>
      <span class="sr-only" role="status">
        {state === 'copied' ? 'Copied to the clipboard' : state === 'failed' ? 'Could not copy: select the text and copy it' : ''}
      </span>
    </>
  );
}

function copyBySelection(text: string): void {
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

/**
 * A destructive action behind a second, explicit click: the first shows what will happen and
 * the buttons to go on or keep things as they are (no browser dialog, so it reads and tests like
 * the rest of the page).
 */
export function ConfirmButton({ label, question, confirm, onConfirm }: { label: string; question: ComponentChildren; confirm: string; onConfirm: () => Promise<void> }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  if (!asking) {
    return (
      <button type="button" class="danger" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const go = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="confirm" role="group" aria-label={label}>
      <span>{question}</span>
      <button type="button" class="danger" disabled={busy} onClick={() => void go()}>
        {confirm}
      </button>
      <button type="button" disabled={busy} onClick={() => (setAsking(false), setError(undefined))}>
        Keep it
      </button>
      {error && <ErrorBox error={error} title="Not done" />}
    </div>
  );
}
