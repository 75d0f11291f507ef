/**
 * The dashboard's aggregation and HTTP side without a browser: bounded state under 100,000
 * tasks, a fast `/api/state`, the live stream's full-then-delta messages, `close()` leaving
 * nothing behind, configuration errors and the loopback Host check.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalExecutor, type Future } from 'weftjs';
import { EventHub } from '../../dist/core/events.js';
import { startDashboard, updateEveryMs } from '../../dist/dashboard/server.js';
import {
  DashboardState,
  maxBars,
  maxDepartedWorkers,
  maxErrors,
  type Snapshot,
} from '../../dist/dashboard/state.js';

type Update = Omit<Snapshot, 'errors'> & { full: boolean; errors?: Snapshot['errors'] };

/** Emits the events of one task that runs on `worker` and finishes (or fails). */
function runTask(hub: EventHub, i: number, worker: string, fail = false, name = 'job'): void {
  const key = `job-${i}`;
  const time = 1_000_000 + i;
  hub.emit({ type: 'submitted', key, name, time });
  hub.emit({ type: 'started', key, name, time, worker, attempt: 1 });
  if (fail) {
    const error = {
      name: 'Error',
      message: `failure ${i}`,
      stack: `Error: failure ${i}\n    at job`,
    };
    hub.emit({ type: 'failed', key, name, time: time + 1, worker, attempt: 1, error });
  } else hub.emit({ type: 'finished', key, name, time: time + 1, worker, durationMs: 1 });
}

/** Reads Server-Sent Events messages from `url`. */
async function openStream(url: string): Promise<{
  next(): Promise<Update | undefined>;
  cancel(): Promise<void>;
}> {
  const response = await fetch(url);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice(6))
            .join('\n');
          if (data) return JSON.parse(data) as Update;
          continue;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard state', () => {
  it('stays bounded with 100,000 tasks, 1,000 departed workers and long errors', () => {
    const state = new DashboardState('bounded');
    const hub = new EventHub();
    hub.on('*', (event) => state.apply(event));
    for (let w = 0; w < 1_000; w++) {
      hub.emit({ type: 'joined', worker: `gone-${w}`, time: w, pid: 1000 + w });
      hub.emit({ type: 'crashed', worker: `gone-${w}`, time: w, exitCode: 1, reason: 'oom' });
    }
    hub.emit({ type: 'joined', worker: 'live', time: 0, resources: { GPU: 1 } });
    for (let i = 0; i < 100_000; i++) runTask(hub, i, 'live', i % 100 === 0);
    hub.emit({
      type: 'failed',
      key: 'huge',
      name: 'job',
      time: 2_000_000,
      error: { name: 'Error', message: 'x'.repeat(100_000), stack: 'y'.repeat(100_000) },
    });

    const snapshot = state.snapshot();
    expect(snapshot.totals).toMatchObject({ submitted: 100_000, finished: 99_000, failed: 1_001 });
    expect(snapshot.totals.running).toBe(0);
    expect(snapshot.bars).toHaveLength(maxBars);
    expect(snapshot.bars.at(-1)![0]).toBe(snapshot.lastSeq);
    expect(snapshot.bars[0]![0]).toBe(snapshot.lastSeq - maxBars + 1);
    expect(snapshot.errors).toHaveLength(maxErrors);
    expect(snapshot.errors[0]!.error.message.length).toBeLessThan(17_000);
    expect(snapshot.errors[1]!.error.message).toBe('failure 99900');
    expect(state.workerCount).toBe(1 + maxDepartedWorkers);
    const live = snapshot.workers.find((w) => w.name === 'live')!;
    expect(live).toMatchObject({ state: 'joined', finished: 99_000, failed: 1_000, busy: 0 });
    expect(live.resources).toEqual({ GPU: 1 });
    expect(snapshot.workers.find((w) => w.name === 'gone-999')).toMatchObject({
      state: 'crashed',
      reason: 'oom (exit code 1)',
    });
    expect(JSON.stringify(snapshot).length).toBeLessThan(1_000_000);
  });

  it('ends an attempt that is tried again with a failed bar and shows what each worker runs', () => {
    const state = new DashboardState('retries');
    state.apply({ type: 'submitted', key: 'a', name: 'fetch', time: 10 });
    state.apply({ type: 'started', key: 'a', name: 'fetch', time: 10, worker: 'w1' });
    expect(state.snapshot().workers[0]!.running).toEqual([{ name: 'fetch', key: 'a', since: 10 }]);
    const retried = { type: 'retried', key: 'a', name: 'fetch', time: 20, worker: 'w1' } as const;
    state.apply({ ...retried, error: { name: 'Error', message: 'flaky' } });
    state.apply({ type: 'started', key: 'a', name: 'fetch', time: 25, worker: 'w2' });
    state.apply({ type: 'finished', key: 'a', name: 'fetch', time: 30, worker: 'w2' });
    const snapshot = state.snapshot();
    const at = (t: number) => t - snapshot.startedAt;
    expect(snapshot.bars).toEqual([
      [1, 'w1', 'fetch', at(10), at(20), 1, 'a'],
      [2, 'w2', 'fetch', at(25), at(30), 0, 'a'],
    ]);
    expect(snapshot.names.fetch).toMatchObject({ submitted: 1, retried: 1, finished: 1 });
    expect(snapshot.workers.map((w) => [w.name, w.finished, w.failed, w.running])).toEqual([
      ['w1', 0, 1, []],
      ['w2', 1, 0, []],
    ]);
  });
});

describe('dashboard server', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('answers /api/state fast after 100,000 tasks', { timeout: 60_000 }, async () => {
    const hub = new EventHub();
    const dashboard = await startDashboard(hub, { label: 'synthetic' });
    try {
      for (let i = 0; i < 100_000; i++) runTask(hub, i, `w${i % 4}`, i % 1000 === 0);
      const asked = performance.now();
      const response = await fetch(`${dashboard.url}api/state`);
      const body = await response.text();
      expect(performance.now() - asked).toBeLessThan(1_000);
      const state = JSON.parse(body) as Snapshot;
      expect(state.totals).toMatchObject({ finished: 99_900, failed: 100, running: 0 });
      expect(state.bars).toHaveLength(maxBars);
      expect(state.errors).toHaveLength(maxErrors);
      expect(body.length).toBeLessThan(1_000_000);
    } finally {
      await dashboard.close();
    }
  });

  it(
    'streams a full snapshot, then only new bars, errors only when they change',
    { timeout: 30_000 },
    async () => {
      const hub = new EventHub();
      const dashboard = await startDashboard(hub, { label: 'stream' });
      try {
        runTask(hub, 1, 'w1', true);
        const stream = await openStream(`${dashboard.url}api/events`);
        const first = (await stream.next())!;
        expect(first.full).toBe(true);
        expect(first.bars).toHaveLength(1);
        expect(first.errors).toHaveLength(1);
        runTask(hub, 2, 'w1');
        runTask(hub, 3, 'w2');
        const asked = Date.now();
        const second = (await stream.next())!;
        expect(Date.now() - asked).toBeLessThan(updateEveryMs * 8);
        expect(second.full).toBe(false);
        expect(second.bars.map((b) => b[0])).toEqual([2, 3]);
        expect(second.errors).toBeUndefined();
        expect(second.totals).toMatchObject({ finished: 2, failed: 1 });
        expect(second.workers.map((w) => w.name)).toEqual(['w1', 'w2']);
        runTask(hub, 4, 'w2', true);
        const third = (await stream.next())!;
        expect(third.bars.map((b) => b[0])).toEqual([4]);
        expect(third.errors!.map((e) => e.error.message)).toEqual(['failure 4', 'failure 1']);
        await stream.cancel();
      } finally {
        await dashboard.close();
      }
    },
  );

  it(
    'close() ends live streams, unsubscribes and leaves no timer; it is idempotent',
    { timeout: 30_000 },
    async () => {
      // The dashboard's timers are unref'd, so process.getActiveResourcesInfo() does not list
      // them: watch setInterval and clearInterval instead.
      const intervals = vi.spyOn(globalThis, 'setInterval');
      const cleared = vi.spyOn(globalThis, 'clearInterval');
      const hub = new EventHub();
      const dashboard = await startDashboard(hub, { label: 'closing' });
      expect(hub.active).toBe(true);
      expect(intervals).toHaveBeenCalledTimes(1);
      const stream = await openStream(`${dashboard.url}api/events`);
      expect((await stream.next())!.full).toBe(true);
      runTask(hub, 1, 'w1');
      const closed = dashboard.close();
      expect(dashboard.close()).toBe(closed);
      await closed;
      // The last state, then the end of the stream.
      const last = await stream.next();
      expect(last?.totals.finished).toBe(1);
      expect(await stream.next()).toBeUndefined();
      expect(hub.active).toBe(false);
      await expect(fetch(`${dashboard.url}api/state`)).rejects.toThrow();

      expect(cleared.mock.calls.map(([timer]) => timer)).toContain(
        intervals.mock.results[0]!.value,
      );
    },
  );

  it('serves the page, its assets and Chart.js from the package', { timeout: 30_000 }, async () => {
    const dashboard = await startDashboard(new EventHub(), { label: 'a <b> label' });
    try {
      const page = await fetch(dashboard.url);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await page.text();
      expect(html).toContain('a &lt;b&gt; label');
      expect(html).not.toMatch(/https?:\/\/(?!localhost)/);
      const chart = await fetch(`${dashboard.url}assets/chart.js`);
      expect(chart.status).toBe(200);
      expect(await chart.text()).toContain('Chart');
      for (const asset of ['assets/dashboard.js', 'assets/dashboard.css']) {
        expect((await fetch(`${dashboard.url}${asset}`)).status).toBe(200);
      }
      expect((await fetch(`${dashboard.url}nothing`)).status).toBe(404);
      expect((await fetch(dashboard.url, { method: 'POST' })).status).toBe(405);
    } finally {
      await dashboard.close();
    }
  });

  it(
    'answers /api/explain from its explain option: 200, 404 for an unknown key, 500 when it throws',
    { timeout: 30_000 },
    async () => {
      const asked: string[] = [];
      const dashboard = await startDashboard(new EventHub(), {
        label: 'explain',
        explain: (key) => {
          asked.push(key);
          if (key === 'boom') throw new Error('no way');
          if (key === 'later-1') return Promise.reject(new Error('gone away'));
          return key.startsWith('known')
            ? Promise.resolve({
                key,
                name: 'fetch',
                status: 'running' as const,
                text: `Task 'fetch' (key ${key}) runs.`,
                waitingFor: [],
                attempts: [],
              })
            : undefined;
        },
      });
      const bare = await startDashboard(new EventHub(), { label: 'no explain' });
      try {
        type Answer = { text?: string; message?: string };
        const get = async (base: string, key: string): Promise<[number, Answer]> => {
          const response = await fetch(`${base}api/explain?key=${encodeURIComponent(key)}`);
          return [response.status, (await response.json()) as Answer];
        };
        expect(await get(dashboard.url, 'known-1 &x')).toEqual([
          200,
          expect.objectContaining({ text: "Task 'fetch' (key known-1 &x) runs." }),
        ]);
        const [status, unknown] = await get(dashboard.url, 'other-2');
        expect(status).toBe(404);
        expect(unknown.message).toContain('No task with key other-2');
        expect((await get(dashboard.url, 'boom'))[0]).toBe(500);
        expect(await get(dashboard.url, 'later-1')).toEqual([
          500,
          { message: 'Explaining task later-1 failed: Error: gone away' },
        ]);
        expect((await get(dashboard.url, ''))[0]).toBe(400);
        expect(asked).toEqual(['known-1 &x', 'other-2', 'boom', 'later-1']);
        const [bareStatus, bareBody] = await get(bare.url, 'known-1');
        expect(bareStatus).toBe(404);
        expect(bareBody.message).toContain('cannot explain tasks');
      } finally {
        await dashboard.close();
        await bare.close();
      }
    },
  );

  it(
    "an executor's dashboard explains its unsettled tasks and a bounded set of settled ones",
    { timeout: 30_000 },
    async () => {
      const ex = await new LocalExecutor({ dashboard: true }).start();
      let release = (): void => undefined;
      try {
        const status = async (key: string): Promise<number> =>
          (await fetch(`${ex.dashboardUrl}api/explain?key=${encodeURIComponent(key)}`)).status;
        const double = (x: number): number => 2 * x;
        const fail = (): never => {
          throw new Error('early failure');
        };
        const first = ex.submit(double, 0);
        const failed = ex.submit(fail);
        await failed.then(
          () => undefined,
          () => undefined,
        );
        const gate = new Promise<void>((resolve) => (release = resolve));
        const held: Future<void> = ex.submit(() => gate);
        // More settled tasks than the dashboard keeps: the oldest are forgotten, failures are not.
        const many = ex.map(
          double,
          Array.from({ length: 2_100 }, (_, i) => i),
        );
        await ex.wait([first, ...many]);
        expect(await status(first.key)).toBe(404);
        expect(await status(failed.key)).toBe(200);
        expect(await status(many.at(-1)!.key)).toBe(200);
        expect(await status(held.key)).toBe(200);
        release();
        await held;
      } finally {
        release();
        await ex.shutdown();
      }
    },
  );

  it(
    'answers only requests addressed to loopback when bound to it',
    { timeout: 30_000 },
    async () => {
      const dashboard = await startDashboard(new EventHub(), { label: 'host check' });
      try {
        const { port } = new URL(dashboard.url);
        const api = `${dashboard.url}api/state`;
        expect((await get(api, { host: `localhost:${port}` })).status).toBe(200);
        expect((await get(api, { host: `127.0.0.1:${port}` })).status).toBe(200);
        const rebound = await get(api, { host: `attacker.example:${port}` });
        expect(rebound.status).toBe(403);
        expect(rebound.body).toContain('attacker.example');
        // A name that merely starts like a loopback address is someone else's DNS name.
        for (const host of [
          `127.0.0.1.evil.example:${port}`,
          '127.0.0.1.evil.example',
          `127.0.0.2:${port}`,
          `127.0.0.1:${Number(port) + 1}`,
          `localhost.evil.example:${port}`,
          `[::1]:${port}`,
        ]) {
          const refused = await get(api, { host });
          expect(refused.status, host).toBe(403);
          expect(refused.body).toContain(`127.0.0.1:${port}`);
        }
      } finally {
        await dashboard.close();
      }
    },
  );

  it(
    'bound to a loopback name, answers that name and localhost on its port',
    { timeout: 30_000 },
    async () => {
      const dashboard = await startDashboard(new EventHub(), { label: 'named', host: 'localhost' });
      try {
        const { port } = new URL(dashboard.url);
        const api = `${dashboard.url}api/state`;
        expect((await get(api, { host: `localhost:${port}` })).status).toBe(200);
        expect((await get(api, { host: `LOCALHOST:${port}` })).status).toBe(200);
        expect((await get(api, { host: `localhost.evil.example:${port}` })).status).toBe(403);
      } finally {
        await dashboard.close();
      }
    },
  );

  it(
    'warns on stderr when bound to a non-loopback address, and does not when bound to loopback',
    { timeout: 30_000 },
    async () => {
      const warnings: string[] = [];
      const open = await startDashboard(new EventHub(), {
        label: 'open',
        host: '0.0.0.0',
        warn: (line) => warnings.push(line),
      });
      try {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toContain('0.0.0.0');
        expect(warnings[0]).toMatch(/anyone who can reach port \d+/);
        expect(warnings[0]).toMatch(/task names, arguments in error messages and stacks/);
        // Not loopback: no Host check (anyone can reach it anyway).
        const { port } = new URL(open.url);
        const api = `http://127.0.0.1:${port}/api/state`;
        expect((await get(api, { host: `some-name.example:${port}` })).status).toBe(200);
      } finally {
        await open.close();
      }
      const quiet = await startDashboard(new EventHub(), {
        label: 'quiet',
        warn: (line) => warnings.push(line),
      });
      await quiet.close();
      expect(warnings).toHaveLength(1);
    },
  );

  it(
    'the default warning goes to stderr, through an executor too',
    { timeout: 30_000 },
    async () => {
      const written: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
        written.push(String(chunk));
        return true;
      });
      try {
        const { LocalExecutor } = await import('weftjs');
        await new LocalExecutor({ dashboard: { host: '0.0.0.0' } }).start(() => undefined);
      } finally {
        spy.mockRestore();
      }
      expect(written.join('')).toMatch(/warning: bound to 0\.0\.0\.0, which is not a loopback/);
    },
  );

  it('rejects a bad port or host with ConfigurationError and stays unsubscribed', async () => {
    const hub = new EventHub();
    const bad: { port?: unknown; host?: unknown }[] = [
      { port: 70_000 },
      { port: -1 },
      { port: 1.5 },
      { port: '8080' },
      { host: '' },
      { host: 'not a host' },
      { host: 42 },
    ];
    for (const options of bad) {
      await expect(
        startDashboard(hub, { label: 'x', ...(options as { port?: number; host?: string }) }),
      ).rejects.toMatchObject({ name: 'ConfigurationError', code: 'CONFIGURATION' });
    }
    const taken = await startDashboard(hub, { label: 'first' });
    try {
      const port = Number(new URL(taken.url).port);
      await expect(startDashboard(hub, { label: 'second', port })).rejects.toMatchObject({
        code: 'CONFIGURATION',
        message: expect.stringContaining('in use'),
      });
      // 203.0.113.0/24 is reserved for documentation: never an address of this machine.
      await expect(startDashboard(hub, { label: 'x', host: '203.0.113.7' })).rejects.toMatchObject({
        code: 'CONFIGURATION',
        message: expect.stringContaining('203.0.113.7'),
      });
    } finally {
      await taken.close();
    }
    expect(hub.active).toBe(false);
  });
});
