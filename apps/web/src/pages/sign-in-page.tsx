import { useState } from 'preact/hooks';
import { useTitle } from '../hooks';

/** The API wants a token: asked once per browser tab (kept in session storage, gone when the tab closes). */
export function SignInPage({ onToken, rejected }: { onToken: (token: string) => void; rejected: boolean }) {
  useTitle('Sign in');
  const [token, setToken] = useState('');
  return (
    <form
      class="sign-in"
      aria-labelledby="sign-in-title"
      onSubmit={(e) => {
        e.preventDefault();
        if (token.trim()) onToken(token.trim());
      }}
    >
      <h1 id="sign-in-title">Sign in</h1>
      <p>This Conveyor needs an API token (one of CONVEYOR_API_TOKENS). Its role — read, write or admin — decides what you may do.</p>
      {rejected && (
        <p class="field-error" role="alert">
          That token was not accepted.
        </p>
      )}
      <label for="token">API token</label>
      <input id="token" type="password" autoComplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} required />
      <small class="muted">Kept for this browser tab only.</small>
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  );
}
