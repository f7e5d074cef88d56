import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's chromium (never a downloaded browser), headless, through playwright-core, with a
 * fresh profile each time. The networking flags are not optional on these machines: without
 * them Chromium's own background connections are refused and it stalls.
 */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export function chromiumPath(): string {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is not installed (apt-get install chromium; test/run.sh installs it)');
  }
}

export class TestBrowser {
  private constructor(
    readonly context: BrowserContext,
    private readonly profile: string,
  ) {}

  static async launch(opts: { colorScheme?: 'light' | 'dark' } = {}): Promise<TestBrowser> {
    const profile = mkdtempSync(join(tmpdir(), 'conveyor-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath(),
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 1000 },
      colorScheme: opts.colorScheme ?? 'light',
      acceptDownloads: true,
    });
    return new TestBrowser(context, profile);
  }

  async page(): Promise<Page> {
    const page = await this.context.newPage();
    page.setDefaultTimeout(30_000);
    return page;
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/** Where the browser tests leave their screenshots: beside the test results (test/run.sh sets it). */
export function screenshotDir(): string {
  const dir = process.env.CONVEYOR_SCREENSHOTS ?? join(__dirname, '../../.data/test-results/screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(screenshotDir(), `${name}.png`), fullPage: true });
}
