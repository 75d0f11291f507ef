/**
 * The dashboard in a real headless Chromium (Debian's package, driven by playwright-core): the
 * page fills live during a run, shows the workers, the task bars and a failed task's error.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHub } from '../../dist/core/events.js';
import { startDashboard } from '../../dist/dashboard/server.js';
import { maxBars } from '../../dist/dashboard/state.js';
import { LocalPoolExecutor, type Executor } from 'weft';
import { burn, failPlain } from '../fixtures/tasks.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshot = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));

describe('dashboard', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `The dashboard test needs Chromium at ${chromiumPath}. Install Debian's package (sudo apt-get install chromium) or set CHROMIUM_PATH; .ci/run installs it.`,
      );
    }
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it(
    'fills live during a run: workers, task bars, a failed task with its stack',
    { timeout: 90_000 },
    async () => {
      const ex: Executor = await new LocalPoolExecutor({
        scheduler: 'threads',
        workers: 2,
        dashboard: true,
      }).start();
      try {
        const url = ex.dashboardUrl!;
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(url);
        const work = ex.map(burn, Array(24).fill(120));
        const failure = ex.submit(failPlain, 'dashboard shows this failure');
        await failure.then(
          () => undefined,
          () => undefined,
        );
        await page.waitForFunction(
          () => document.querySelectorAll('#workers tbody tr').length >= 2,
          undefined,
          { timeout: 20_000 },
        );
        const workers = await page.$$eval('#workers tbody tr', (rows) =>
          rows.map((r) => r.getAttribute('data-worker')),
        );
        expect(workers).toEqual(expect.arrayContaining(['threads-1', 'threads-2']));
        // Task bars appear on the chart while the run goes on.
        await page.waitForFunction(
          () => {
            const chart = (
              window as unknown as {
                Chart: { getChart(id: string): { data: { datasets: { data: unknown[] }[] } } };
              }
            ).Chart.getChart('stream');
            return chart.data.datasets.reduce((n, d) => n + d.data.length, 0) >= 4;
          },
          undefined,
          { timeout: 20_000 },
        );
        await page.waitForSelector('.error .msg', { timeout: 20_000 });
        expect(await page.textContent('.error .msg')).toContain('dashboard shows this failure');
        expect(await page.textContent('.error pre')).toContain('failPlain');
        await ex.wait(work);
        await page.waitForFunction(
          () => document.getElementById('names')!.textContent.includes('24 / 24'),
          undefined,
          { timeout: 20_000 },
        );
        mkdirSync(fileURLToPath(new URL('../../docs/', import.meta.url)), { recursive: true });
        await page.screenshot({ path: screenshot, fullPage: true });
        expect(existsSync(screenshot)).toBe(true);
        await page.close();
      } finally {
        await ex.shutdown();
      }
    },
  );

  it(
    'keeps its state bounded and answers fast with 100,000 tasks',
    { timeout: 60_000 },
    async () => {
      const hub = new EventHub();
      const dashboard = await startDashboard(hub, { label: 'synthetic' });
      try {
        const t0 = Date.now();
        hub.emit({ type: 'joined', worker: 'w1', time: t0 });
        for (let i = 0; i < 100_000; i++) {
          const key = `job-${i}`;
          hub.emit({ type: 'submitted', key, name: 'job', time: t0 });
          hub.emit({ type: 'started', key, name: 'job', time: t0 + i, worker: 'w1' });
          if (i % 1000 === 0)
            hub.emit({
              type: 'failed',
              key,
              name: 'job',
              time: t0 + i + 1,
              worker: 'w1',
              error: { name: 'Error', message: `failure ${i}` },
            });
          else hub.emit({ type: 'finished', key, name: 'job', time: t0 + i + 1, worker: 'w1' });
        }
        const started = performance.now();
        const response = await fetch(`${dashboard.url}api/state`);
        const state = (await response.json()) as {
          totals: { finished: number; failed: number };
          bars: unknown[];
          errors: unknown[];
        };
        expect(performance.now() - started).toBeLessThan(2_000);
        expect(state.totals.finished).toBe(99_900);
        expect(state.totals.failed).toBe(100);
        expect(state.bars.length).toBeLessThanOrEqual(maxBars * 1.2);
        expect(state.errors.length).toBeLessThanOrEqual(50);
        expect(JSON.stringify(state).length).toBeLessThan(2_000_000);
      } finally {
        await dashboard.close();
      }
    },
  );

  it('refuses a bad port with ConfigurationError', async () => {
    await expect(startDashboard(new EventHub(), { label: 'x', port: 70_000 })).rejects.toThrow(
      /port/,
    );
  });
});
