import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, getToken, onUnauthorized, setToken } from './api/client';
import { ErrorBox, Loading } from './components/common';
import { SessionContext, may, useRoute, type Role, type Session } from './hooks';
import { href } from './lib/router';
import { AgentsPage, DeadLettersPage, SecretsPage } from './pages/agents-pages';
import { DefinitionPage, DefinitionsPage, PipelinePage, PipelinesPage } from './pages/pipelines-pages';
import { ResourcePage, ResourcesPage } from './pages/resources-pages';
import { RunPage } from './pages/run-page';
import { RunsPage } from './pages/runs-page';
import { SchedulePage, SchedulesPage } from './pages/schedules-pages';
import { SignInPage } from './pages/sign-in-page';
import { TriggerPage } from './pages/trigger-page';
import { TriggersPage, WebhookTriggerPage } from './pages/triggers-pages';

interface WhoAmI {
  role: Role;
  authenticated: boolean;
}

/** The dashboard: who is signed in (GET /whoami), the navigation, and the page the address names. */
export function App() {
  const route = useRoute();
  const [who, setWho] = useState<WhoAmI | undefined>();
  const [needsToken, setNeedsToken] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const [attempt, setAttempt] = useState(0);

  useEffect(() => onUnauthorized(() => setNeedsToken(true)), []);
  useEffect(() => {
    setError(undefined);
    api.get<WhoAmI>('/whoami').then(
      (w) => {
        setWho(w);
        setNeedsToken(false);
      },
      (e: Error) => (e instanceof ApiError && e.status === 401 ? setNeedsToken(true) : setError(e)),
    );
  }, [attempt]);

  const session: Session = {
    role: who?.role ?? 'read',
    authenticated: who?.authenticated ?? false,
    signOut: () => {
      setToken(undefined);
      setWho(undefined);
      setNeedsToken(true);
    },
  };

  if (needsToken) {
    return (
      <Shell session={undefined}>
        <SignInPage
          rejected={Boolean(getToken())}
          onToken={(t) => {
            setToken(t);
            setNeedsToken(false);
            setAttempt((a) => a + 1);
          }}
        />
      </Shell>
    );
  }
  if (error) {
    return (
      <Shell session={undefined}>
        <ErrorBox error={error} title="The gateway did not answer" />
        <button type="button" onClick={() => setAttempt((a) => a + 1)}>
          Try again
        </button>
      </Shell>
    );
  }
  if (!who) return <Loading what="Conveyor" />;

  const [section, a, b] = route.parts;
  let page;
  switch (section ?? 'runs') {
    case 'runs':
      page = a ? <RunPage id={a} route={route} /> : <RunsPage route={route} />;
      break;
    case 'pipelines':
      page = a ? <PipelinePage name={a} /> : <PipelinesPage />;
      break;
    case 'trigger':
      page = <TriggerPage route={route} />;
      break;
    case 'definitions':
      page = a ? <DefinitionPage name={a} /> : <DefinitionsPage />;
      break;
    case 'resources':
      page = a && b ? <ResourcePage type={a} name={b} route={route} /> : <ResourcesPage route={route} />;
      break;
    case 'schedules':
      page = a ? <SchedulePage name={a} /> : <SchedulesPage />;
      break;
    case 'triggers':
      page = a ? <WebhookTriggerPage name={a} /> : <TriggersPage />;
      break;
    case 'agents':
      page = <AgentsPage />;
      break;
    case 'dead-letters':
      page = <DeadLettersPage route={route} />;
      break;
    case 'secrets':
      page = <SecretsPage />;
      break;
    default:
      page = <ErrorBox error={`there is no page "#/${route.parts.join('/')}"`} title="Not found" />;
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} section={section ?? 'runs'}>
        {page}
      </Shell>
    </SessionContext.Provider>
  );
}

const NAV: Array<{ id: string; label: string; admin?: boolean }> = [
  { id: 'runs', label: 'Runs' },
  { id: 'pipelines', label: 'Pipelines' },
  { id: 'definitions', label: 'Definitions' },
  { id: 'resources', label: 'Resources' },
  { id: 'schedules', label: 'Schedules' },
  { id: 'triggers', label: 'Triggers' },
  { id: 'agents', label: 'Agents' },
  { id: 'dead-letters', label: 'Dead letters' },
  { id: 'secrets', label: 'Secrets', admin: true },
];

function Shell({ session, section, children }: { session?: Session; section?: string; children: preact.ComponentChildren }) {
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to the content
      </a>
      <header class="top">
        <a class="brand" href={href(['runs'])}>
          Conveyor
        </a>
        {session && (
          <nav aria-label="Sections">
            <ul>
              {NAV.filter((n) => !n.admin || may(session, 'admin')).map((n) => (
                <li key={n.id}>
                  <a href={href([n.id])} aria-current={section === n.id ? 'page' : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {session && (
          <div class="who">
            <span class="role" data-testid="role" title={session.authenticated ? 'the role of your API token' : 'the API has no tokens: everyone on this address may do everything'}>
              {session.authenticated ? `role: ${session.role}` : `${session.role} (no tokens)`}
            </span>
            {session.authenticated && (
              <button type="button" onClick={session.signOut}>
                Sign out
              </button>
            )}
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
