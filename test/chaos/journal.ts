/**
 * Reads the test drivers' journal (test/drivers/behaviours.ts) and judges, from it and the list
 * of agents the chaos suite killed, whether any step ran or finished more often than the faults
 * explain. Pure functions: the e2e test checks the rules on hand-made journals.
 *
 * Journal lines, appended by every test driver process to one file (O_APPEND, so the order of
 * lines is the order the writes happened in):
 *   `<run> <step> <attempt> <agent> start`         the handler was entered
 *   `<run> <step> <attempt> <agent> end <outcome>` the handler returned `ok` or `failed`, or threw
 * (`done` lines, also written, are ignored here). Every agent process gets an id of its own, so
 * an agent id that was killed wrote all of its lines before it died.
 */

export interface JournalLine {
  /** Byte offset of the line in the journal: its place in time relative to kills. */
  offset: number;
  run: string;
  step: string;
  attempt: number;
  agent: string;
  what: 'start' | 'end';
  outcome?: 'ok' | 'failed' | 'threw';
}

/** An agent the suite SIGKILLed, and the journal's size just before the signal was sent. */
export interface Kill {
  agent: string;
  offset: number;
}

export function parseJournal(text: string): JournalLine[] {
  const out: JournalLine[] = [];
  let offset = 0;
  for (const raw of text.split('\n')) {
    const at = offset;
    offset += Buffer.byteLength(raw) + 1;
    const [run, step, attempt, agent, what, outcome] = raw.split(' ');
    if (what === 'start') out.push({ offset: at, run, step, attempt: Number(attempt), agent, what });
    else if (what === 'end') out.push({ offset: at, run, step, attempt: Number(attempt), agent, what, outcome: outcome as JournalLine['outcome'] });
  }
  return out;
}

export interface JournalFigures {
  /** Handler entries. */
  starts: number;
  /** Handler returns with a success. */
  completions: number;
  /** (run, step) pairs entered at least once. */
  pairs: number;
  /** Entries after a pair's first, each explained by an earlier attempt's failure or death. */
  reentriesAfterFailure: number;
  reentriesAfterKill: number;
  /** Pairs with at least one entry no failure explains: "next steps started twice" (target 0). */
  startedTwice: string[];
  /** Pairs with more than one successful `end`. */
  completedTwice: string[];
  /** Of those, the ones whose first completer was killed before the step was entered again. */
  completedTwiceAfterKill: string[];
  /** The others (target 0). */
  completedTwiceUnexplained: string[];
  /** Runs with at least one handler entry. */
  runsEntered: Set<string>;
}

/**
 * The rules.
 *
 * A step's handler entered again for the same run (a later `start` of the pair) is explained
 * when EVERY earlier entry of that pair had failed by then, an entry having failed when
 *   - its own `end` line says `failed` or `threw`, and comes before the new entry (a retry), or
 *   - its agent was SIGKILLed before the new entry (a redelivery after the agent died; this
 *     includes a kill after the handler returned but before its hand-off was stored).
 * A pair with any unexplained entry counts once in `startedTwice`: the step ran although an
 * attempt of it was still alive or had succeeded (a duplicate hand-off into it, or a
 * redelivery of a step whose agent was fine).
 *
 * A pair with more than one `end ok` is in `completedTwice`. It is explained when the agent
 * that wrote the first `end ok` was killed after writing it (it cannot write afterwards) and
 * before the pair's next entry: the handler returned, the agent died before its hand-off was
 * stored and acked, and the redelivery ran the step again. The journal cannot tell a kill
 * before the hand-off was stored from one between storing and acking (where the SDK should
 * repeat the stored hand-off instead of running the step again), so this count is an upper
 * bound on the legitimate repeats.
 */
export function analyseJournal(lines: JournalLine[], kills: Kill[]): JournalFigures {
  const killedAt = new Map<string, number>();
  for (const k of kills) if (!killedAt.has(k.agent)) killedAt.set(k.agent, k.offset);
  const byPair = new Map<string, JournalLine[]>();
  for (const l of lines) {
    const key = `${l.run} ${l.step}`;
    let list = byPair.get(key);
    if (!list) byPair.set(key, (list = []));
    list.push(l);
  }
  const f: JournalFigures = {
    starts: 0,
    completions: 0,
    pairs: 0,
    reentriesAfterFailure: 0,
    reentriesAfterKill: 0,
    startedTwice: [],
    completedTwice: [],
    completedTwiceAfterKill: [],
    completedTwiceUnexplained: [],
    runsEntered: new Set(),
  };
  for (const [key, list] of byPair) {
    list.sort((a, b) => a.offset - b.offset);
    const starts = list.filter((l) => l.what === 'start');
    const oks = list.filter((l) => l.what === 'end' && l.outcome === 'ok');
    f.starts += starts.length;
    f.completions += oks.length;
    if (starts.length) {
      f.pairs += 1;
      f.runsEntered.add(starts[0].run);
    }
    let unexplained = false;
    for (let k = 1; k < starts.length; k++) {
      const now = starts[k];
      let byKill = false;
      const allFailed = starts.slice(0, k).every((earlier) => {
        const end = list.find((l) => l.what === 'end' && l.attempt === earlier.attempt && l.agent === earlier.agent && l.offset > earlier.offset);
        if (end && end.offset < now.offset && end.outcome !== 'ok') return true;
        const killed = killedAt.get(earlier.agent);
        if (killed !== undefined && killed <= now.offset) {
          byKill = true;
          return true;
        }
        return false;
      });
      if (!allFailed) unexplained = true;
      else if (byKill) f.reentriesAfterKill += 1;
      else f.reentriesAfterFailure += 1;
    }
    if (unexplained) f.startedTwice.push(key);
    if (oks.length > 1) {
      f.completedTwice.push(key);
      // Each completion after the first: the one before it was cut off by a kill of its agent,
      // and the step was entered again only after that kill.
      const explained = oks.slice(1).every((later, i) => {
        const prev = oks[i];
        const killed = killedAt.get(prev.agent);
        const next = starts.find((s) => s.offset > prev.offset);
        return killed !== undefined && next !== undefined && killed <= next.offset && next.offset < later.offset;
      });
      (explained ? f.completedTwiceAfterKill : f.completedTwiceUnexplained).push(key);
    }
  }
  return f;
}
