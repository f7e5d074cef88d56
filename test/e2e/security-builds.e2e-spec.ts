import { createHash, randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { DeadLetter } from '@conveyor/contracts';
import { MASK } from '@conveyor/secrets';
import { BuildSystem } from '../support/build-system';
import { BUILTIN_DRIVERS, type BuiltinDriverFleet, buildOutput, runLogs } from '../support/builtin-drivers';
import type { TestRepository } from '../support/git-repo';
import { AppProcess, waitFor } from '../support/processes';
import type { TestSystem } from '../support/system';

jest.setTimeout(180_000);

const SECRET_KEY = randomBytes(32).toString('base64');
// Letters and digits only, so that the shell commands below need no quoting tricks.
const SECRET = `Sx${randomBytes(15).toString('hex')}Q9`;

/**
 * Issue 6 against the running system: the four built-in driver apps as real processes, real
 * Docker (network none), a real nats-server. A secret never shows outside the build container;
 * hostile builds are contained; garbage on every step subject is dead-lettered.
 */
describe('security of builds: secrets, containment, poison messages', () => {
  let build: BuildSystem;
  let sys: TestSystem;
  let fleet: BuiltinDriverFleet;
  let repo: TestRepository;
  let docker: Docker;
  let nc: NatsConnection;

  beforeAll(async () => {
    build = await BuildSystem.start({ CONVEYOR_SECRET_KEY: SECRET_KEY });
    ({ sys, fleet, repo, docker } = build);
    nc = await connect({ servers: sys.nats.url });
    await sys.api.ok('PUT', '/secrets/deploy-token', { value: SECRET });
  });
  afterAll(async () => {
    await nc?.close();
    expect(await build?.stop()).toBe(0);
  });

  const everyDriverAlive = () => expect(fleet.processes.map((p) => [p.name, p.alive])).toEqual(fleet.processes.map((p) => [p.name, true]));

  it('never shows a secret in /logs, SSE, /runs, /resources or on conveyor.>, even when the build echoes, splits or base64-encodes it', async () => {
    const seen: string[] = [];
    const sub: Subscription = nc.subscribe('conveyor.>');
    const collecting = (async () => {
      for await (const m of sub) seen.push(m.subject, Buffer.from(m.data).toString('latin1'), JSON.stringify(m.headers ? [...m.headers.keys()].map((k) => m.headers!.values(k)) : []));
    })();
    const id = await build.startBuild({
      repository: repo.url,
      env: [{ name: 'TOKEN', secret: 'deploy-token' }, { name: 'PLAIN', value: 'visible' }],
      commands: [
        'echo "plain: $TOKEN and $PLAIN"',
        'echo "stderr: $TOKEN" >&2',
        'printf %s ${TOKEN:0:4}; printf "%s\\n" ${TOKEN:4}',
        'echo -n "$TOKEN" | base64',
        'echo "$TOKEN" | base64',
        'echo "x$TOKEN" | base64',
        'echo "sha: $(echo -n "$TOKEN" | sha256sum)"',
      ],
    });
    const run = await sys.waitForRun(id, undefined, 120_000);
    expect(run.status).toBe('succeeded');
    // The value reached the container: its hash is what the build printed.
    const out = await buildOutput(sys.api, id);
    expect(out).toContain(`sha: ${createHash('sha256').update(SECRET).digest('hex')}  -`);
    expect(out).toEqual(expect.arrayContaining([`plain: ${MASK} and visible`, `stderr: ${MASK}`, MASK]));
    expect(out.filter((l) => l.includes(MASK)).length).toBeGreaterThanOrEqual(6);

    let sse = '';
    const res = await fetch(`${sys.api.baseUrl}/logs/pipeline/${id}`);
    sse = await res.text(); // the run ended: the stream ends with its "end" event
    expect(sse).toContain('event: end');
    await new Promise((r) => setTimeout(r, 500));
    sub.unsubscribe();
    await collecting;
    expect(seen.length).toBeGreaterThan(20);

    const forms = [SECRET, Buffer.from(SECRET).toString('base64').replace(/=+$/, ''), Buffer.from(`${SECRET}\n`).toString('base64').slice(0, 20), SECRET.slice(4)];
    const places: Record<string, string> = {
      logs: JSON.stringify(await runLogs(sys.api, id)),
      sse,
      run: JSON.stringify(await sys.api.run(id)),
      runs: JSON.stringify(await sys.api.ok('GET', '/runs')),
      resources: JSON.stringify(await sys.api.ok('GET', '/resources')),
      resource: JSON.stringify(await sys.api.ok('GET', `/resources/thing/${(await sys.api.run(id)).resource.name}/1`)),
      secrets: JSON.stringify(await sys.api.ok('GET', '/secrets')),
      'conveyor.>': seen.join('\n'),
    };
    for (const [where, text] of Object.entries(places)) {
      for (const form of forms) expect({ where, leaks: text.includes(form) }).toEqual({ where, leaks: false });
    }
    expect(places.sse).toContain(MASK);
  });

  it('contains a build that tries the Docker socket or to gain privileges', async () => {
    const id = await build.startBuild({
      repository: repo.url,
      commands: [
        'ls /var/run/docker.sock /run/docker.sock 2>/dev/null || echo no-docker-socket',
        'grep NoNewPrivs /proc/self/status',
        'mount -t tmpfs none /mnt 2>/dev/null || echo mount-refused',
        'chroot / true 2>/dev/null || echo chroot-refused',
        'mknod /tmp/disk b 8 0 2>/dev/null || echo mknod-refused',
        '(echo > /dev/tcp/127.0.0.1/2375) 2>/dev/null || echo no-docker-tcp',
        'ip link add x type dummy 2>/dev/null || echo netadmin-refused',
      ],
    });
    const run = await sys.waitForRun(id, undefined, 120_000);
    expect(run.status).toBe('succeeded');
    expect(await buildOutput(sys.api, id)).toEqual(['no-docker-socket', 'NoNewPrivs:\t1', 'mount-refused', 'chroot-refused', 'mknod-refused', 'no-docker-tcp', 'netadmin-refused']);
    everyDriverAlive();
  });

  it('contains a fork bomb with the pids limit; cleanup runs, the agents survive, the next build works', async () => {
    const id = await build.startBuild({ repository: repo.url, commands: ['bomb() { bomb | bomb & }; bomb', 'sleep 3; echo after-bomb'] }, { timeout: 20 });
    const run = await sys.waitForRun(id, undefined, 120_000);
    expect(['succeeded', 'failed']).toContain(run.status);
    expect(run.steps.find((s) => s.id === 'stop')?.status).toBe('succeeded');
    await expect(docker.getContainer(build.fleet.containerName(id)).inspect()).rejects.toMatchObject({ statusCode: 404 });
    everyDriverAlive();
    const next = await build.startBuild({ repository: repo.url, commands: ['echo still-working'] });
    expect((await sys.waitForRun(next, undefined, 120_000)).status).toBe('succeeded');
    expect(await buildOutput(sys.api, next)).toEqual(['still-working']);
  });

  it('dead-letters garbage, truncated and oversized messages on every step subject of every built-in driver, which keep serving', async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const machine = fleet.machine;
    const valid = JSON.stringify({ v: 1, runId: '0'.repeat(26), pipeline: { name: 'p', steps: [{ id: 'a', name: 'a', driver: 'container-start' }] }, stepIndex: 0 });
    const payloads: Array<[string, Uint8Array]> = [
      ['garbage', new Uint8Array([0xff, 0xfe, 0x00, 0x01, 0x80])],
      ['text', new TextEncoder().encode('hello, driver')],
      ['truncated', new TextEncoder().encode(valid.slice(0, valid.length / 2))],
      ['empty', new Uint8Array()],
      ['wrong shape', new TextEncoder().encode('[1,2,3]')],
      ['oversized', new TextEncoder().encode(JSON.stringify({ v: 1, junk: 'x'.repeat(900 * 1024) }))],
    ];
    const dlqBefore = (await jsm.streams.info('CONVEYOR_DLQ')).state.last_seq;
    // Work subjects of a run that does not exist: for any machine, and pinned to the fleet's.
    const run = '0'.repeat(26);
    // Poison on purpose: the wire check sees every one of them break the protocol.
    sys.nats.wire?.expectViolations(new RegExp(`^conveyor\\.steps\\.${run}\\.x\\.`));
    const subjects = BUILTIN_DRIVERS.flatMap((d) => [`conveyor.steps.${run}.x.${d}.any`, `conveyor.steps.${run}.x.${d}.${machine}`]);
    for (const subject of subjects) for (const [, data] of payloads) await js.publish(subject, data);
    const expected = subjects.length * payloads.length;
    const letters = await waitFor('every poison message to be dead-lettered', async () => {
      const last = (await jsm.streams.info('CONVEYOR_DLQ')).state.last_seq;
      if (last - dlqBefore < expected) return undefined;
      const out: DeadLetter[] = [];
      for (let s = dlqBefore + 1; s <= last; s++) out.push((await jsm.streams.getMessage('CONVEYOR_DLQ', { seq: s }))!.json<DeadLetter>());
      return out;
    }, 60_000, 250);
    expect(letters).toHaveLength(expected);
    for (const subject of subjects) expect({ subject, n: letters.filter((l) => l.subject === subject).length }).toEqual({ subject, n: payloads.length });
    for (const l of letters) expect(l.reason).toEqual(expect.any(String));
    everyDriverAlive();
    const id = await build.startBuild({ repository: repo.url, commands: ['echo served'] });
    expect((await sys.waitForRun(id, undefined, 120_000)).status).toBe('succeeded');
  });

  it('a gateway without tokens refuses to listen on a non-loopback address', async () => {
    let failure = '';
    try {
      const p = await AppProcess.start('gateway-open', 'apps/gateway/src/main.js', { CONVEYOR_NATS_URL: sys.nats.url, CONVEYOR_HTTP_HOST: '0.0.0.0', CONVEYOR_HTTP_PORT: '0', CONVEYOR_API_TOKENS: '', CONVEYOR_API_TOKENS_FILE: '' }, 'listening on', 15_000);
      await p.stop('SIGKILL');
    } catch (err) {
      failure = (err as Error).message;
    }
    expect(failure).toContain('refusing to listen on 0.0.0.0 without API tokens');
    // On loopback it starts, and says at start-up that it is unauthenticated.
    const open = await AppProcess.start('gateway-loopback', 'apps/gateway/src/main.js', { CONVEYOR_NATS_URL: sys.nats.url, CONVEYOR_HTTP_HOST: '127.0.0.1', CONVEYOR_HTTP_PORT: '0', CONVEYOR_API_TOKENS: '', CONVEYOR_API_TOKENS_FILE: '' }, 'listening on', 15_000);
    try {
      expect(open.logs).toContain('the API is UNAUTHENTICATED');
    } finally {
      await open.stop('SIGTERM');
    }
  });
});
