import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Logger } from '@nestjs/common';
import { collectArtifacts } from '@conveyor/artifacts';
import type { StepContext, StepResult } from '@conveyor/driver-sdk';

/**
 * What a test driver does, read from the step's `config`, so one program can play every
 * part a test needs:
 *   sleepMs         wait this long (aborts promptly on cancel/timeout)
 *   failTimes       fail the first N attempts
 *   throwTimes      throw on the first N attempts (instead of returning a failure)
 *   crashOnAttempt  kill this process with SIGKILL on that attempt (after logging a line)
 *   lines           print this many numbered lines
 *   longLine        print one line of this many characters, without a final newline
 *   ignoreAbort     keep sleeping even when aborted (to test what the SDK does then)
 *   outputBytes     return this many bytes of output data (to outgrow a NATS message)
 *   failWhileFile   fail while this file exists (a test removes it to let a re-run pass)
 *   keep            `{name, bytes}`: keep an artifact of that name, `bytes` long (a repeating
 *                   pattern of the run id), through the SDK's ctx.artifacts
 *   appLog          write this text with the app's own (Nest) logger, as a driver's code would
 *   clock           return when the handler was entered and left, in ms of the system-wide
 *                   monotonic clock (process.hrtime), so the bench can time across processes
 * Every call also appends lines to $TEST_DRIVER_JOURNAL, so a test can count how often a
 * step really ran and really finished:
 *   `<run> <step> <attempt> <agent> start`          when the handler is entered
 *   `<run> <step> <attempt> <agent> done`           just before it returns a success
 *   `<run> <step> <attempt> <agent> end <outcome>`  when it returns (`ok`, `failed`) or throws
 *                                                   (`threw`); a process killed in the handler
 *                                                   writes no `end`
 */
export async function behave(ctx: StepContext): Promise<StepResult> {
  const c = ctx.config as Record<string, number | boolean | string | undefined>;
  if (c.clock) return { success: true, data: { enteredAt: monotonicMs(), leftAt: monotonicMs() } };
  const journal = process.env.TEST_DRIVER_JOURNAL;
  const who = `${ctx.runId} ${ctx.step.id} ${ctx.attempt} ${ctx.agent.id}`;
  if (journal) appendFileSync(journal, `${who} start\n`);
  let outcome = 'threw';
  try {
    const result = await act(ctx, c, journal);
    outcome = result.success ? 'ok' : 'failed';
    return result;
  } finally {
    if (journal) appendFileSync(journal, `${who} end ${outcome}\n`);
  }
}

async function act(ctx: StepContext, c: Record<string, number | boolean | string | undefined>, journal: string | undefined): Promise<StepResult> {
  if (typeof c.appLog === 'string') new Logger('TestDriver').log(`run ${ctx.runId} step ${ctx.step.id}: ${c.appLog}`);
  if (typeof c.lines === 'number') {
    for (let i = 1; i <= c.lines; i++) {
      ctx.log.write('stdout', `line ${i}\n`);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
  }
  if (typeof c.longLine === 'number') {
    // Written in pieces, as a process's pipe would deliver it.
    for (let i = 0; i < c.longLine; i += 1000) ctx.log.write('stdout', 'x'.repeat(Math.min(1000, c.longLine - i)));
  }
  if (c.crashOnAttempt === ctx.attempt) {
    ctx.log.info('about to crash');
    await new Promise((r) => setTimeout(r, 50));
    process.kill(process.pid, 'SIGKILL');
  }
  if (typeof c.sleepMs === 'number') {
    await sleep(c.sleepMs, c.ignoreAbort ? undefined : ctx.signal);
  }
  if (typeof c.throwTimes === 'number' && ctx.attempt <= c.throwTimes) {
    throw new Error(`thrown on attempt ${ctx.attempt}`);
  }
  if (typeof c.failWhileFile === 'string' && existsSync(c.failWhileFile)) {
    return { success: false, message: `failed: ${c.failWhileFile} exists` };
  }
  if (typeof c.failTimes === 'number' && ctx.attempt <= c.failTimes) {
    return { success: false, message: `failed on attempt ${ctx.attempt}` };
  }
  if (c.keep && typeof c.keep === 'object') await keepArtifact(ctx, c.keep as { name: string; bytes: number });
  if (journal) appendFileSync(journal, `${ctx.runId} ${ctx.step.id} ${ctx.attempt} ${ctx.agent.id} done\n`);
  const blob = typeof c.outputBytes === 'number' ? { blob: 'x'.repeat(c.outputBytes) } : {};
  return { success: true, message: 'ok', data: { agent: ctx.agent.id, attempt: ctx.attempt, ...blob } };
}

/** The bytes `keep` stores: what a test compares a download with. */
export function keptBytes(runId: string, bytes: number): Buffer {
  const unit = Buffer.from(`${runId}\n`);
  return Buffer.concat(Array.from({ length: Math.ceil(bytes / unit.length) }, () => unit)).subarray(0, bytes);
}

async function keepArtifact(ctx: StepContext, keep: { name: string; bytes: number }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-keep-'));
  try {
    mkdirSync(dirname(join(dir, keep.name)), { recursive: true });
    writeFileSync(join(dir, keep.name), keptBytes(ctx.runId, keep.bytes));
    const files = await collectArtifacts(dir, { paths: [keep.name], needs: [], when: 'success', optional: false }, { maxFileBytes: 1 << 30, maxStepBytes: 1 << 30, maxFiles: 10 });
    await ctx.artifacts.upload(files);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    // A sleep that ran its course leaves no listener on the signal.
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** CLOCK_MONOTONIC on Linux: one clock for every process of the machine. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
