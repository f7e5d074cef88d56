import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector';

/**
 * Loaded with `node --require` into a process the bench profiles (BENCH_CPU_PROF=dir): the
 * first SIGWINCH starts V8's CPU profiler and its sampling heap profiler, the second writes
 * `<dir>/<name>.<pid>.cpuprofile` (the format of `--cpu-prof`) and `.heapprofile` (that of
 * `--heap-prof`: where the measured phase allocated) and says so on stdout. Not `--cpu-prof` itself: that writes only
 * on a normal exit, and Nest's shutdown hooks end a process by raising the signal again; a
 * toggle also keeps start-up out of the profile, which then covers the measured phase alone.
 * SIGWINCH because nothing else listens to it and it does nothing by default (Nest's shutdown
 * hooks take SIGUSR2 for a stop, and SIGUSR1 starts Node's inspector).
 */
const dir = process.env.BENCH_CPU_PROF_DIR;
const name = process.env.BENCH_CPU_PROF_NAME ?? 'process';
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGWINCH', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.start'));
      // What the measured phase allocates, garbage included, sampled every 32 KiB (the format of `--heap-prof`).
      session.post('HeapProfiler.enable', () => session.post('HeapProfiler.startSampling', { samplingInterval: 32_768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }));
      return;
    }
    running = false;
    // The heap profile first: the bench waits for the CPU profile's line, the last one written.
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (err) console.error(`heap profile: ${err.message}`);
      else writeFileSync(join(dir, `${name}.${process.pid}.heapprofile`), JSON.stringify(result.profile));
      session.post('Profiler.stop', (err, result) => {
        if (err) {
          console.error(`cpu profile: ${err.message}`);
          return;
        }
        const file = join(dir, `${name}.${process.pid}.cpuprofile`);
        writeFileSync(file, JSON.stringify(result.profile));
        process.stdout.write(`cpu profile written to ${file}\n`);
      });
    });
  });
}
