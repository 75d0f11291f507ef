/**
 * The dashboard in a real headless Chromium: the page fills live during a run on two worker
 * threads (workers, what they run, task bars, progress, a failed task's error and stack), and
 * stays responsive while 100,000 tasks flow. Writes docs/dashboard.png for the README.
 */
import { mkdirSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalPoolExecutor, type Future } from 'weftjs';
import { EventHub } from '../../dist/core/events.js';
import { startDashboard } from '../../dist/dashboard/server.js';
import { maxBars } from '../../dist/dashboard/state.js';
import { launchChromium } from './browser.js';
import { checksum, resize, thumbnail, upload } from './fixtures.js';

const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
const screenshot = `${docs}dashboard.png`;

/** One bar as the chart holds it (src/dashboard/browser/dashboard.ts). */
interface Point {
  x: [number, number];
  y: string;
  o: number;
  n: string;
  k: string;
}

/** What the page exposes for inspection (src/dashboard/browser/dashboard.ts). */
interface PageHandle {
  weftDashboard: {
    chart: {
      data: { labels: string[]; datasets: { label: string; data: Point[] }[] };
      getDatasetMeta(index: number): { data: { x: number; y: number; base: number }[] };
    };
    bars: () => unknown[];
  };
}

/**
 * Clicks the widest finished bar of `name` on the task stream, as a person would (a mouse click
 * at its middle, which Chart.js hit-tests), and returns its task key.
 */
async function clickBar(page: Page, name: string): Promise<string> {
  const target = await page.evaluate((n) => {
    const { chart } = (window as unknown as PageHandle).weftDashboard;
    let best: { key: string; x: number; y: number; width: number } | undefined;
    chart.data.datasets.forEach((dataset, d) => {
      if (dataset.label !== n) return;
      const elements = chart.getDatasetMeta(d).data;
      dataset.data.forEach((point, i) => {
        const element = elements[i]!;
        const width = Math.abs(element.x - element.base);
        if (!best || width > best.width)
          best = { key: point.k, x: (element.x + element.base) / 2, y: element.y, width };
      });
    });
    return best;
  }, name);
  expect(target, `a ${name} bar on the stream`).toBeDefined();
  const box = (await page.locator('#stream').boundingBox())!;
  await page.mouse.click(box.x + target!.x, box.y + target!.y);
  return target!.key;
}

/** Waits until the explanation panel shows `key` and has asked the server at least `answers` times. */
async function explained(page: Page, key: string): Promise<string> {
  await page.waitForFunction(
    (k) => {
      const panel = document.getElementById('explain')!;
      return !panel.hidden && panel.dataset.key === k && panel.dataset.updated !== undefined;
    },
    key,
    { timeout: 10_000 },
  );
  return (await page.textContent('#explain-text'))!;
}

/** Collects the page's script errors: a broken page must fail the test, not time it out. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  return errors;
}

describe('dashboard in Chromium', () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  }, 30_000);

  it(
    'fills live during a run: workers and what they run, task bars, progress, a failed task with its stack',
    { timeout: 120_000 },
    async () => {
      const ex = await new LocalPoolExecutor({
        scheduler: 'threads',
        workers: 2,
        dashboard: true,
      }).start();
      const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
      const pageErrors = watchErrors(page);
      try {
        const url = ex.dashboardUrl!;
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        await page.goto(url);

        const perName = 12;
        const futures: Future<number>[] = [];
        for (let i = 0; i < perName; i++) {
          futures.push(ex.submit(resize, 150 + 20 * (i % 4)));
          futures.push(ex.submit(thumbnail, 60));
          futures.push(ex.submit(checksum, i, 1));
          if (i === 3) {
            const failure = ex.submit(
              upload,
              'upload failed: the bucket "results" refused the object',
              40,
            );
            void failure.then(
              () => undefined,
              () => undefined,
            );
          }
        }
        let settled = 0;
        for (const f of futures) void f.then(() => settled++);

        // Both workers, each busy with a task the page names, while the run goes on.
        await page.waitForFunction(
          () =>
            Array.from(document.querySelectorAll('#workers tbody tr[data-worker]')).filter((row) =>
              row.querySelector('.task'),
            ).length >= 2,
          undefined,
          { timeout: 30_000 },
        );
        expect(settled).toBeLessThan(futures.length);
        const workers = await page.$$eval('#workers tbody tr[data-worker]', (rows) =>
          rows.map((row) => [row.getAttribute('data-worker'), row.children[1]!.textContent]),
        );
        expect(workers).toHaveLength(2);
        for (const [, state] of workers) expect(state).toContain('joined');

        // Task bars appear on the stream, one lane per worker.
        await page.waitForFunction(
          () => Number(document.getElementById('stream')!.dataset.bars) >= 6,
          undefined,
          { timeout: 30_000 },
        );
        const lanes = await page.evaluate(
          () => (window as unknown as PageHandle).weftDashboard.chart.data.labels,
        );
        expect(lanes).toEqual(workers.map(([name]) => name));

        // The failed task: its error message, the task's name and its stack.
        await page.waitForSelector('.error .msg', { timeout: 30_000 });
        expect(await page.textContent('.error .msg')).toBe(
          'Error: upload failed: the bucket "results" refused the object',
        );
        expect(await page.textContent('.error')).toContain('task uploadResult');
        expect(await page.textContent('.error pre')).toMatch(/at uploadResult/);

        // A picture of the run in progress for the README.
        await page.waitForFunction(
          () => Number(document.getElementById('stream')!.dataset.bars) >= 14,
          undefined,
          { timeout: 30_000 },
        );
        mkdirSync(docs, { recursive: true });
        await page.screenshot({ path: screenshot, fullPage: true });
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
          1280,
        );

        // A click on the error explains its task: the failure, its attempt and the worker.
        const failedKey = (await page.getAttribute('.error', 'data-key'))!;
        await page.click('.error .msg');
        const failure = await explained(page, failedKey);
        expect(failure).toContain(`Task 'uploadResult' (key ${failedKey})`);
        expect(failure).toContain('upload failed: the bucket "results" refused the object');
        expect(await page.textContent('#explain-attempts')).toContain('failed');
        await page.click('#explain-close');
        expect(await page.isHidden('#explain')).toBe(true);

        // A click on a bar explains that task, and the panel asks again every second while open.
        const barKey = await clickBar(page, 'resizeImage');
        const text = await explained(page, barKey);
        expect(text).toContain(`Task 'resizeImage' (key ${barKey})`);
        const first = Number(await page.getAttribute('#explain', 'data-updated'));
        await page.waitForFunction(
          (t) => Number(document.getElementById('explain')!.dataset.updated) > t,
          first,
          { timeout: 5_000 },
        );
        await page.keyboard.press('Escape');
        expect(await page.isHidden('#explain')).toBe(true);

        await ex.wait(futures);
        // Progress per task name reaches the end; the failure shows on its bar and in the chart.
        for (const name of ['resizeImage', 'makeThumbnail', 'computeChecksum']) {
          await page.waitForFunction(
            (n) =>
              document
                .querySelector(`#names [data-name="${n}"] .label`)
                ?.textContent.includes('12 / 12'),
            name,
            { timeout: 30_000 },
          );
        }
        expect(await page.textContent('#names [data-name="uploadResult"] .label')).toContain(
          '1 / 1 · 1 failed',
        );
        const legend = await page.evaluate(() =>
          (window as unknown as PageHandle).weftDashboard.chart.data.datasets.map((d) => d.label),
        );
        expect(legend).toEqual(
          expect.arrayContaining(['resizeImage', 'makeThumbnail', 'computeChecksum', 'failed']),
        );
        expect(await page.textContent('#totals')).toContain('finished 36');

        // The open explanation follows its task live: running when clicked, then finished.
        const slow = ex.submit(resize, 1_500);
        const running = page.locator(`#workers .task[data-key="${slow.key}"]`);
        await running.waitFor({ timeout: 10_000 });
        await running.click();
        expect(await explained(page, slow.key)).toContain(`(key ${slow.key})`);
        expect(await page.textContent('#explain-status')).toBe('resizeImage · running');
        await slow;
        await page.waitForFunction(
          () => document.getElementById('explain-status')!.textContent === 'resizeImage · finished',
          undefined,
          { timeout: 10_000 },
        );

        expect(pageErrors).toEqual([]);

        // Shutdown ends the live stream: the page says so instead of freezing silently (and its
        // reconnection attempts may log refused connections from here on).
        await ex.shutdown();
        await page.waitForFunction(
          () => document.getElementById('status')!.textContent.startsWith('disconnected'),
          undefined,
          { timeout: 10_000 },
        );
      } finally {
        await page.close();
        await ex.shutdown();
      }
    },
  );

  it(
    'fits 1280 px: long worker names, many resources and busy workers wrap instead of scrolling sideways',
    { timeout: 60_000 },
    async () => {
      const hub = new EventHub();
      const dashboard = await startDashboard(hub, { label: 'a wide cluster' });
      const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
      const pageErrors = watchErrors(page);
      try {
        await page.goto(dashboard.url);
        const t0 = Date.now();
        const resources = {
          GPU: 4,
          memoryGiB: 512,
          localScratchSSD: 2048,
          licensedSolverSeats: 16,
          'accelerator.tpu-v5e': 8,
          networkGbps: 100,
        };
        for (let w = 0; w < 4; w++) {
          const worker = `render-node-${w}.eu-west-3.compute.internal-${100_000 + w}`;
          hub.emit({ type: 'joined', worker, time: t0, pid: 400_000 + w, resources });
          for (let i = 0; i < 5; i++) {
            const key = `k${w}-${i}`;
            const name = `transcodeVideoSegmentWithSubtitles${i}`;
            hub.emit({ type: 'submitted', key, name, time: t0 });
            hub.emit({ type: 'started', key, name, time: t0, worker });
          }
        }
        await page.waitForFunction(
          () => document.querySelectorAll('#workers tbody tr[data-worker]').length === 4,
          undefined,
          { timeout: 10_000 },
        );
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
          1280,
        );
        // The resources column is on screen, not cut off by its section.
        const cell = (await page.locator('#workers tbody tr td.resources').first().boundingBox())!;
        const section = (await page.locator('#workers-box').boundingBox())!;
        expect(cell.x + cell.width).toBeLessThanOrEqual(section.x + section.width);
        expect(await page.textContent('#workers tbody td.resources')).toContain('networkGbps=100');
        expect(pageErrors).toEqual([]);
      } finally {
        await page.close();
        await dashboard.close();
      }
    },
  );

  it(
    'stays responsive while 100,000 tasks flow, and keeps at most maxBars bars',
    { timeout: 120_000 },
    async () => {
      const hub = new EventHub();
      const dashboard = await startDashboard(hub, { label: '100,000 synthetic tasks' });
      const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
      const pageErrors = watchErrors(page);
      try {
        await page.goto(dashboard.url);
        await page.waitForFunction(() =>
          document.getElementById('status')!.textContent.startsWith('live'),
        );
        const names = ['parse', 'score', 'index', 'store'];
        const t0 = Date.now();
        for (let w = 0; w < 8; w++) hub.emit({ type: 'joined', worker: `w${w}`, time: t0 });
        let slowest = 0;
        for (let i = 0; i < 100_000; i++) {
          const key = `k${i}`;
          const name = names[i % names.length]!;
          const worker = `w${i % 8}`;
          const time = t0 + i / 10;
          hub.emit({ type: 'submitted', key, name, time });
          hub.emit({ type: 'started', key, name, time, worker });
          if (i % 1000 === 999) {
            const error = { name: 'Error', message: `bad record ${i}`, stack: `Error: bad ${i}` };
            hub.emit({ type: 'failed', key, name, time: time + 5, worker, error });
          } else hub.emit({ type: 'finished', key, name, time: time + 5, worker });
          if (i % 5_000 === 4_999) {
            // Let the server stream, and check the page still answers at once.
            await yieldToLoop();
            const asked = performance.now();
            await page.evaluate(() => 1);
            slowest = Math.max(slowest, performance.now() - asked);
          }
        }
        await page.waitForFunction(
          () => document.getElementById('totals')!.textContent.includes('finished 99,900'),
          undefined,
          { timeout: 30_000 },
        );
        expect(await page.textContent('#totals')).toContain('failed 100');
        const kept = await page.evaluate(
          () => (window as unknown as PageHandle).weftDashboard.bars().length,
        );
        expect(kept).toBe(maxBars);
        expect(await page.$$eval('.error', (e) => e.length)).toBe(50);
        // Generous: a page that redrew every event, or kept every bar, would take seconds.
        expect(slowest).toBeLessThan(1_500);
        expect(pageErrors).toEqual([]);
      } finally {
        await page.close();
        await dashboard.close();
      }
    },
  );
});
