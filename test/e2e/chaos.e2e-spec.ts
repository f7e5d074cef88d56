import { DEFAULT_OPTIONS, formatReport, runChaos, stopAllChaos, type ChaosOptions } from '../chaos/chaos';
import { analyseJournal, parseJournal } from '../chaos/journal';

// The suite bounds itself; this only catches a hang. afterAll stops whatever is left.
jest.setTimeout(150_000);

afterAll(() => stopAllChaos());

/** The rules of ../chaos/journal.ts on hand-made journals. */
describe('chaos journal rules', () => {
  const j = (...lines: string[]) => parseJournal(lines.join('\n') + '\n');
  /** A kill just before the line at `index` of `lines` was written. */
  const killBefore = (lines: ReturnType<typeof j>, index: number, agent: string) => ({ agent, offset: lines[index].offset });

  it('a retry after a failed attempt, and a redelivery after a kill, are explained', () => {
    const lines = j(
      'r1 s2 1 a1 start',
      'r1 s2 1 a1 end failed',
      'r1 s2 2 a2 start',
      'r1 s2 2 a2 end ok',
      'r1 s3 1 a3 start',
      'r1 s3 2 a4 start',
      'r1 s3 2 a4 end ok',
    );
    const f = analyseJournal(lines, [killBefore(lines, 5, 'a3')]);
    expect(f).toMatchObject({ starts: 4, completions: 2, reentriesAfterFailure: 1, reentriesAfterKill: 1, startedTwice: [], completedTwice: [] });
  });

  it('an entry while an earlier attempt is alive, or after it succeeded, is a step started twice', () => {
    const lines = j(
      'r1 s1 1 a1 start',
      'r1 s1 2 a2 start', // a1 still running it
      'r1 s1 1 a1 end ok',
      'r1 s1 2 a2 end ok',
      'r2 s1 1 a1 start',
      'r2 s1 1 a1 end ok',
      'r2 s1 2 a1 start', // nobody died, nothing failed
      'r2 s1 2 a1 end ok',
    );
    // a1 killed only after everything: it explains nothing.
    const f = analyseJournal(lines, [{ agent: 'a1', offset: 10_000 }]);
    expect(f.startedTwice).toEqual(['r1 s1', 'r2 s1']);
    expect(f.completedTwiceUnexplained).toEqual(['r1 s1', 'r2 s1']);
  });

  it('a step completed twice is explained only when its first completer was killed before the step ran again', () => {
    const lines = j(
      'r1 s1 1 a1 start',
      'r1 s1 1 a1 end ok',
      'r1 s1 2 a2 start',
      'r1 s1 2 a2 end ok',
      'r2 s1 1 a3 start',
      'r2 s1 1 a3 end ok',
      'r2 s1 2 a4 start',
      'r2 s1 2 a4 end ok',
    );
    // a1 dies right after returning (before r1's step runs again); a3 dies only after r2's did.
    const f = analyseJournal(lines, [killBefore(lines, 2, 'a1'), killBefore(lines, 7, 'a3')]);
    expect(f.completedTwice).toEqual(['r1 s1', 'r2 s1']);
    expect(f.completedTwiceAfterKill).toEqual(['r1 s1']);
    expect(f.completedTwiceUnexplained).toEqual(['r2 s1']);
    expect(f.startedTwice).toEqual(['r2 s1']);
  });
});

/**
 * Runs the chaos suite in short (an agent SIGKILLed every ~1.5 s, the gateway once, nats-server
 * once) and checks that the faults really happened and every run was started, so the targets
 * are not met vacuously, and that every target was met.
 */
async function shortChaos(options: Partial<ChaosOptions> & { runs: number; rate: number }): Promise<void> {
  const progress: string[] = [];
  const report = await runChaos({
    ...DEFAULT_OPTIONS,
    killEveryMs: 1500,
    ackWaitMs: 3000,
    settleMs: 4000,
    seed: Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1e9)),
    log: (line) => progress.push(line),
    ...options,
  });
  const text = formatReport(report);
  if (report.missed.length) console.log(`${progress.join('\n')}\n\n${text}`);
  const kinds = report.faults.map((f) => f.kind);
  expect(kinds.filter((k) => k === 'agent').length).toBeGreaterThanOrEqual(5);
  expect(kinds).toEqual(expect.arrayContaining(['gateway', 'nats']));
  expect(report.figures.runsStarted).toBe(options.runs);
  expect(report.missed).toEqual([]);
}

/**
 * The chaos suite (npm run chaos) in short: 60 runs of the 4-step test pipeline at 4 a second
 * on a real nats-server, the gateway and four agents as processes of their own; every target must be met.
 */
describe('chaos, short', () => {
  it('loses no run, leaves none stuck, starts and completes no step twice, and ends every run soon after the last fault', async () => {
    await shortChaos({ runs: 60, rate: 4 });
  });
});

/**
 * The same faults on the graph pipeline (CHAOS_GRAPH=1: fan-out to 8, a fan-in, a matrix of 4,
 * cleanup): no fan-in started twice, no run lost or stuck. nats-server is stopped with SIGTERM
 * here, to keep this short suite's outcome independent of what a SIGKILLed single server loses
 * of what it acknowledged a moment before (its file store flushes behind); `npm run chaos` with
 * CHAOS_GRAPH=1 SIGKILLs it (see the issue 11 note for what that showed).
 */
describe('chaos on a graph pipeline, short', () => {
  it('starts every fan-in step once and loses no run while agents, the gateway and nats-server are killed', async () => {
    await shortChaos({ graph: true, natsSignal: 'SIGTERM', runs: 40, rate: 2 });
  });
});
