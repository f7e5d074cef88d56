import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Api, readSse } from '../support/api';
import { TestBrowser } from '../support/browser';
import type { NatsServer } from '../support/nats-server';
import { startTestDriver, waitFor } from '../support/processes';
import { monotonicMs as now } from '../drivers/behaviours';

const LINES = Number(process.env.BENCH_LOG_LINES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_BROWSER_ROUNDS ?? 3);

/**
 * The dashboard in headless chromium: the time from opening a run's page to its first log line
 * drawn, and to a 100,000-line log all taken in and its last line drawn; each against reading
 * the same log stream in Node with no page at all (the floor the gateway and the network set).
 * And the bundle the browser loads.
 */
export async function benchBrowser(api: Api, nats: NatsServer): Promise<string[][]> {
  const driver = await startTestDriver(['logs'], { CONVEYOR_NATS_URL: nats.url, CONVEYOR_AGENT_ID: 'bench-logs' });
  const browser = await TestBrowser.launch();
  try {
    await api.ok('POST', '/pipelines', { name: 'bench-log', resource: 'bench', steps: [{ id: 'print', name: 'print', driver: 'logs', config: { lines: LINES }, timeout: 600 }] });
    const { runid } = await api.ok<{ runid: string }>('POST', '/resources', { name: 'bench-log', resource: 'bench', pipeline: 'bench-log', spec: {} });
    await waitFor('the 100,000-line run', async () => ((await api.run(runid)).status === 'succeeded' ? true : undefined), 600_000, 200);

    const page = await browser.page();
    page.setDefaultTimeout(300_000);
    // Timed by the page itself (ms since its navigation began, seen by a MutationObserver), not by
    // polling from here, whose intervals (up to 500 ms) would be most of what is measured.
    await page.addInitScript(`window.__marks = {};
      new MutationObserver(() => {
        const m = window.__marks;
        if (!m.first && document.querySelector('.log-row')) m.first = performance.now();
        const count = document.querySelector('[data-testid="log-count"]');
        if (count && count.textContent !== m.count) { m.count = count.textContent; m.last = performance.now(); }
      }).observe(document, { childList: true, subtree: true, characterData: true });`);
    const url = `${api.baseUrl}/#/runs/${runid}?step=print`;
    const first: number[] = [];
    const all: number[] = [];
    const rawFirst: number[] = [];
    const rawAll: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Raw: the same SSE stream read in Node until the first line and until the end.
      const t0 = now();
      let got = 0;
      await readSse(`${api.baseUrl}/logs/pipeline/${runid}`, (e) => {
        if (e.event === 'log' && ++got === 1) rawFirst.push(now() - t0);
        if (e.event === 'end') return false;
      }, {}, 300_000);
      rawAll.push(now() - t0);

      await page.goto('about:blank');
      await page.goto(url);
      // The stream's end event comes after its last line, whose batch is drawn with it.
      await page.getByText(/The log is complete/).waitFor();
      await page.waitForTimeout(300);
      const marks = JSON.parse(await page.evaluate<string>('JSON.stringify(window.__marks)')) as { first: number; last: number };
      first.push(marks.first);
      all.push(marks.last);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // Scrolling 100,000 lines: a jump to the middle, measured to the next frame drawn.
    const jump = (await page.evaluate(`(async () => {
      const box = document.querySelector('[data-testid="log-box"]');
      const t = performance.now();
      box.scrollTop = box.scrollHeight / 2;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return { ms: performance.now() - t, rows: document.querySelectorAll('.log-row').length };
    })()`)) as { ms: number; rows: number };
    const bundle = bundleSize();
    return [
      ['dashboard: first log line drawn, median (ms)', med(first).toFixed(0), med(rawFirst).toFixed(0), `from the page's navigation start (loading the bundle, /whoami, opening the stream); baseline: the first line of the same SSE stream read in Node (${ROUNDS} rounds)`],
      [`dashboard: ${LINES.toLocaleString('en')}-line log taken in, last line drawn, median (ms)`, med(all).toFixed(0), med(rawAll).toFixed(0), `${(med(all) / med(rawAll)).toFixed(2)}x reading the whole stream in Node; a scroll to the middle draws in ${jump.ms.toFixed(0)} ms with ${jump.rows} rows in the DOM`],
      ['dashboard bundle (KiB, gzip)', `${(bundle.raw / 1024).toFixed(0)} (${(bundle.gzip / 1024).toFixed(1)})`, '-', `${bundle.files} files: JavaScript and CSS of dist/web/assets`],
    ];
  } finally {
    await browser.close();
    await driver.stop('SIGTERM');
  }
}

function bundleSize(): { raw: number; gzip: number; files: number } {
  const dir = join(__dirname, '../../web/assets');
  const assets = existsSync(dir) ? readdirSync(dir).filter((f) => /\.(js|css)$/.test(f)) : [];
  let raw = 0;
  let gzip = 0;
  for (const f of assets) {
    const b = readFileSync(join(dir, f));
    raw += b.length;
    gzip += gzipSync(b).length;
  }
  return { raw, gzip, files: assets.length };
}
