import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Run, StepRun } from '@conveyor/contracts';
import { describeRun, expect, type Probe } from './probe';

/** What a scenario may do besides look: kill and restart the driver, publish by hand. */
export interface Hands {
  js: JetStreamClient;
  nc: NatsConnection;
  /** SIGKILLs the driver's process group and starts the command again. */
  killAndRestartDriver(): Promise<void>;
}

export interface Scenario {
  name: string;
  /** What it checks, for the table and the README. */
  checks: string;
  /** Runs alone, after the others (it kills the driver). */
  alone?: boolean;
  /** Resolves when the driver passed; throws (Failed) with the reason otherwise. */
  run(p: Probe, hands: Hands): Promise<void>;
}

const token = () => randomBytes(6).toString('hex');

function step(run: Run, id: string): StepRun {
  const s = run.steps.find((x) => x.id === id);
  expect(s, `run ${run.id} has no step ${id}`);
  return s;
}

function status(run: Run, want: Run['status'], steps: Record<string, StepRun['status']>): void {
  const wrong = run.status !== want || Object.entries(steps).some(([id, st]) => step(run, id).status !== st);
  const wanted = [`run ${want}`, ...Object.entries(steps).map(([id, st]) => `${id} ${st}`)].join(', ');
  expect(!wrong, `expected ${wanted}; got ${describeRun(run)}`);
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'success-with-data',
    checks: "a step's data reaches the run record and the next step",
    async run(p) {
      const t = token();
      const id = await p.start('success-with-data', [
        { id: 'a', instruction: { action: 'succeed', data: { token: t } } },
        { id: 'b', instruction: { action: 'echo' } },
      ]);
      const r = await p.ended(id);
      status(r, 'succeeded', { a: 'succeeded', b: 'succeeded' });
      expect(step(r, 'a').data?.token === t, `step a's data in the run record is ${JSON.stringify(step(r, 'a').data)}, not {"token":"${t}"}`);
      const received = (step(r, 'b').data?.received as Record<string, { token?: string }> | undefined)?.a;
      expect(received?.token === t, `step b was handed ${JSON.stringify(step(r, 'b').data)} as step a's output, not its data {"token":"${t}"}`);
    },
  },
  {
    name: 'failure',
    checks: 'a failure fails the run with its message, skips what follows and runs the cleanup step',
    async run(p) {
      const t = `conformance failure ${token()}`;
      const id = await p.start('failure', [
        { id: 'a', instruction: { action: 'fail', message: t } },
        { id: 'b', instruction: { action: 'succeed' } },
        { id: 'cleanup', instruction: { action: 'succeed' }, always: true },
      ]);
      const r = await p.ended(id);
      status(r, 'failed', { a: 'failed', b: 'skipped', cleanup: 'succeeded' });
      expect(step(r, 'a').message?.includes(t), `step a's message is ${JSON.stringify(step(r, 'a').message)}, not the failure's ("${t}")`);
    },
  },
  {
    name: 'throw',
    checks: 'a handler that throws fails its step with the error, and the driver goes on',
    async run(p) {
      const t = `conformance throw ${token()}`;
      const id = await p.start('throw', [{ id: 'a', instruction: { action: 'throw', message: t } }]);
      const r = await p.ended(id);
      status(r, 'failed', { a: 'failed' });
      expect(step(r, 'a').message?.includes(t), `step a's message is ${JSON.stringify(step(r, 'a').message)}, not the error's ("${t}")`);
    },
  },
  {
    name: 'retry',
    checks: 'a failed attempt with retries left runs again, as attempt 2',
    async run(p) {
      const id = await p.start('retry', [{ id: 'a', instruction: { action: 'fail', message: 'fails every attempt' }, retries: 1 }]);
      const r = await p.ended(id);
      status(r, 'failed', { a: 'failed' });
      expect(step(r, 'a').attempts === 2, `step a ran ${step(r, 'a').attempts} attempt(s), not 2 (retries: 1)`);
    },
  },
  {
    name: 'timeout',
    checks: "a step past its timeout is aborted and fails as timed out",
    async run(p) {
      const started = Date.now();
      const id = await p.start('timeout', [{ id: 'a', instruction: { action: 'sleep', ms: 120_000 }, timeout: 1 }]);
      const r = await p.ended(id);
      status(r, 'failed', { a: 'failed' });
      expect(/timed out/i.test(step(r, 'a').message ?? ''), `step a's message is ${JSON.stringify(step(r, 'a').message)}, not a timeout's`);
      expect(Date.now() - started < 30_000, `the 1 s timeout ended the step only after ${Math.round((Date.now() - started) / 1000)} s`);
    },
  },
  {
    name: 'cancel',
    checks: 'cancelling the run aborts the running step at once, and the cleanup step runs',
    async run(p) {
      const id = await p.start('cancel', [
        { id: 'a', instruction: { action: 'sleep', ms: 120_000 } },
        { id: 'cleanup', instruction: { action: 'succeed' }, always: true },
      ]);
      await p.running(id, 'a');
      const asked = Date.now();
      await p.request('POST', `/runs/${id}/cancel`);
      const r = await p.ended(id);
      status(r, 'cancelled', { a: 'cancelled', cleanup: 'succeeded' });
      expect(Date.now() - asked < 15_000, `the cancelled step ended only ${Math.round((Date.now() - asked) / 1000)} s after the cancel`);
    },
  },
  {
    name: 'poison-message',
    checks: 'a malformed step message is terminated and dead-lettered with a reason; the driver goes on serving',
    async run(p, hands) {
      const subject = p.subjects.work(`poison${token()}`, 'poison', p.driver);
      const { seq } = await hands.js.publish(subject, '{"v": 1, "this is": not json');
      const reason = await p.poll(async () => p.wire.termination(seq), `the driver terminating the malformed message (stream seq ${seq}, ${subject})`);
      expect(reason.length > 0, `the malformed message was terminated without a reason (+TERM with no text)`);
      const letters = await p.poll(async () => {
        const l = (await p.deadLetters()).filter((d) => d.subject === subject);
        return l.length ? l : undefined;
      }, `a dead letter for ${subject} (GET /dead-letters)`);
      expect(letters.length === 1 && letters[0].reason, `the dead letter of ${subject} has no reason`);
      const id = await p.start('poison-message', [{ id: 'a', instruction: { action: 'succeed' } }]);
      status(await p.ended(id), 'succeeded', { a: 'succeeded' });
    },
  },
  {
    name: 'log-order',
    checks: "a step's log lines are all stored, in order, numbered without gaps",
    async run(p) {
      const lines = 300;
      const id = await p.start('log-order', [{ id: 'a', instruction: { action: 'log', lines } }]);
      status(await p.ended(id), 'succeeded', { a: 'succeeded' });
      const got = await p.poll(async () => {
        const l = (await p.logs(id)).filter((x) => x.stepId === 'a' && x.stream === 'stdout');
        return l.length >= lines ? l : undefined;
      }, `${lines} stdout lines of step a (GET /logs)`);
      const want = Array.from({ length: lines }, (_, i) => `line ${i + 1}`);
      const bad = got.findIndex((l, i) => l.line !== want[i]);
      expect(got.length === lines && bad < 0, `stdout of step a: ${got.length} lines; line ${bad + 1} is ${JSON.stringify(got[bad]?.line)}, not "${want[bad]}"`);
      const all = (await p.logs(id)).filter((x) => x.stepId === 'a');
      const gap = all.findIndex((l, i) => i > 0 && l.attempt === all[i - 1].attempt && l.seq !== all[i - 1].seq + 1);
      expect(gap < 0, `step a's log lines are numbered ${all[gap - 1]?.seq} then ${all[gap]?.seq}: a gap or a line out of order`);
    },
  },
  {
    name: 'ack-after-hand-off',
    checks: "each step message is acked only after its hand-off (the next step's work, the run's end) is stored",
    async run(p) {
      const id = await p.start('ack-after-hand-off', [
        { id: 'a', instruction: { action: 'succeed' } },
        { id: 'b', instruction: { action: 'succeed' } },
      ]);
      status(await p.ended(id), 'succeeded', { a: 'succeeded', b: 'succeeded' });
      const s = p.subjects;
      for (const [stepId, handOff] of [['a', s.stepWork(id, 'b')], ['b', s.runEnd(id)]] as const) {
        const workSeq = await p.storedSeq(s.stepWork(id, stepId));
        const handOffMsg = await p.jsm.streams.getMessage(s.runsStream, { last_by_subj: handOff }).catch(() => null);
        expect(workSeq && handOffMsg, `step ${stepId}'s work or its hand-off (${handOff}) is not stored`);
        const seen = await p.poll(async () => {
          const o = p.wire.order(workSeq, handOffMsg.subject);
          return o.ack !== undefined ? o : undefined;
        }, `the ack of step ${stepId}'s message (stream seq ${workSeq})`);
        expect(seen.handOff !== undefined && seen.handOff < seen.ack!, `step ${stepId}: its message (stream seq ${workSeq}) was acked before its hand-off ${handOffMsg.subject} was published`);
      }
    },
  },
  {
    name: 'sigkill-redelivery',
    checks: 'a driver killed mid-step gets the step again after a restart, and the step is handed on once',
    alone: true,
    async run(p, hands) {
      const t = token();
      const id = await p.start('sigkill-redelivery', [
        { id: 'a', instruction: { action: 'sleep', ms: 3_000 } },
        { id: 'b', instruction: { action: 'succeed', data: { token: t } } },
      ]);
      await p.running(id, 'a');
      await hands.killAndRestartDriver();
      const r = await p.ended(id);
      status(r, 'succeeded', { a: 'succeeded', b: 'succeeded' });
      expect(step(r, 'a').attempts >= 2, `step a shows ${step(r, 'a').attempts} attempt(s): the redelivery after the SIGKILL was not recorded as a new attempt`);
      expect(step(r, 'b').attempts === 1 && step(r, 'b').data?.token === t, `step b ran ${step(r, 'b').attempts} time(s), with data ${JSON.stringify(step(r, 'b').data)}`);
      const counts = await p.recordCounts(id);
      const work = Object.entries(counts).filter(([subject]) => {
        const at = p.subjects.parseRunRecord(subject);
        return at?.kind === 'work' && at.stepId === 'b';
      });
      const handOffs = work.reduce((n, [, c]) => n + c, 0);
      expect(handOffs === 1, `step a was handed on ${handOffs} times (records of step b's work: ${JSON.stringify(Object.fromEntries(work))})`);
      expect(counts[p.subjects.runEnd(id)] === 1, `the run's end is stored ${counts[p.subjects.runEnd(id)] ?? 0} times`);
    },
  },
];
