/**
 * What the worker pools (threads and processes) must do beyond the conformance suite: crashes,
 * out of memory, timeouts and cancels of tasks that ignore their signal, resources, TypeScript.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalPoolExecutor,
  ResourceUnavailableError,
  TaskCancelledError,
  TaskTimeoutError,
  WorkerCrashedError,
  type WorkerEvent,
} from 'weft';
import { area } from '../ts-task.js';
import {
  allocate,
  crashOnce,
  exitWith,
  free,
  hang,
  hangWithTimeout,
  killSelf,
  needsTpu,
  needsTwoGpus,
  throwInTimer,
  useGpu,
  whoAmI,
} from './fixtures.js';

const rejection = (p: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(p).then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );

export function poolSpecifics(scheduler: 'threads' | 'processes'): void {
  describe(`LocalPoolExecutor (${scheduler}) specifics`, () => {
    let ex: LocalPoolExecutor;
    const workerEvents: WorkerEvent[] = [];
    beforeAll(async () => {
      ex = new LocalPoolExecutor({
        scheduler,
        workers: 2,
        graceMs: 300,
        resourceLimits: { maxOldGenerationSizeMb: 48 },
      });
      ex.events.on('*', (e) => {
        if (!('key' in e)) workerEvents.push(e);
      });
      await ex.start();
    }, 60_000);
    afterAll(() => ex.shutdown({ cancelPending: true }), 60_000);

    it('fails a task whose worker exits with WorkerCrashedError naming the code, and replaces the worker', async () => {
      const before = workerEvents.filter((e) => e.type === 'joined').length;
      const error = (await rejection(ex.submit(exitWith, 3))) as WorkerCrashedError;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error.exitCode).toBe(3);
      expect(error.message).toMatch(/exited with code 3/);
      expect(error.message).toContain('exitWith');
      // Other work goes on, on a fresh worker.
      expect(await ex.wait(ex.map(whoAmI, [1, 2, 3, 4]))).toHaveLength(4);
      const crashed = workerEvents.filter((e) => e.type === 'crashed');
      expect(crashed.some((e) => e.exitCode === 3)).toBe(true);
      expect(workerEvents.filter((e) => e.type === 'joined').length).toBeGreaterThan(before);
    });

    it('retries a task whose worker crashed when it has retries left', async () => {
      expect(await ex.submit(crashOnce)).toBe(2);
    });

    it('reports an uncaught exception thrown in a timer as a crash with that error as cause', async () => {
      const error = (await rejection(ex.submit(throwInTimer))) as WorkerCrashedError;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error.message).toContain('thrown in a timer');
      expect((error.cause as Error).name).toBe('TypeError');
    });

    it(
      'fails a task that runs out of memory under resourceLimits with WorkerCrashedError',
      { timeout: 60_000 },
      async () => {
        const error = (await rejection(ex.submit(allocate))) as WorkerCrashedError;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.message).toMatch(/memory/);
        expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      },
    );

    if (scheduler === 'processes') {
      it('names the signal when a worker process is killed', async () => {
        const error = (await rejection(ex.submit(killSelf, 'SIGKILL'))) as WorkerCrashedError;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.signal).toBe('SIGKILL');
        expect(error.message).toContain('SIGKILL');
      });

      it('runs tasks in other processes', async () => {
        const pids = await ex.wait(ex.map(whoAmI, [1, 2]));
        for (const pid of pids) expect(pid).not.toBe(process.pid);
      });
    }

    it('times out a task that ignores its signal and stops its worker after the grace period', async () => {
      const started = Date.now();
      const error = await rejection(ex.submit(hangWithTimeout, 20_000));
      expect(error).toBeInstanceOf(TaskTimeoutError);
      expect(Date.now() - started).toBeLessThan(10_000);
      // The worker was stopped: the pool still answers well before the 20 s loop would end.
      const left = () => workerEvents.filter((e) => e.type === 'left').length;
      const before = left();
      await new Promise((r) => setTimeout(r, 600));
      expect(left()).toBeGreaterThanOrEqual(before);
      expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('cancels a running task that ignores its signal by replacing its worker', async () => {
      const f = ex.submit(hang, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      const leftBefore = workerEvents.filter((e) => e.type === 'left').length;
      expect(await f.cancel()).toBe(true);
      expect(await rejection(f)).toBeInstanceOf(TaskCancelledError);
      const deadline = Date.now() + 10_000;
      while (
        workerEvents.filter((e) => e.type === 'left').length === leftBefore &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(workerEvents.filter((e) => e.type === 'left').length).toBeGreaterThan(leftBefore);
      expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
    });

    it('runs a TypeScript task module (enum, parameter properties) in its workers', async () => {
      expect(await ex.submit(area, 'square', 4)).toBe('square:16');
      expect(await ex.wait(ex.map(area, ['circle', 'square'], [1, 3]))).toEqual([
        'circle:3',
        'square:9',
      ]);
    });
  });

  describe(`LocalPoolExecutor (${scheduler}) resources`, () => {
    it(
      'never overlaps two GPU=1 tasks on a GPU=1 pool, while other tasks run beside them',
      { timeout: 60_000 },
      async () => {
        const file = join(mkdtempSync(join(tmpdir(), 'weft-gpu-')), 'log');
        writeFileSync(file, '');
        await new LocalPoolExecutor({ scheduler, workers: 2, resources: { GPU: 1 } }).start(
          async (pool) => {
            // Load the fixture module in both workers first, so start-up does not skew intervals.
            await pool.wait(pool.map(free, ['/dev/null', '/dev/null'], [1, 1]));
            await pool.wait([
              ...pool.map(useGpu, Array(4).fill(file), Array(4).fill(150)),
              pool.submit(free, file, 400),
            ]);
            expect(() => pool.submit(needsTwoGpus)).toThrow(ResourceUnavailableError);
            expect(() => pool.submit(needsTpu)).toThrow(/TPU/);
          },
        );
        const rows = readFileSync(file, 'utf8').trim().split('\n');
        const gpu = rows
          .filter((r) => !r.startsWith('free'))
          .map((r) => r.split(' ').map(Number) as [number, number])
          .sort((a, b) => a[0] - b[0]);
        expect(gpu).toHaveLength(4);
        for (let i = 1; i < gpu.length; i++)
          expect(gpu[i]![0]).toBeGreaterThanOrEqual(gpu[i - 1]![1]);
        const [, fs, fe] = rows
          .find((r) => r.startsWith('free'))!
          .split(' ')
          .map(Number) as [string, number, number];
        expect(gpu.some(([s, e]) => s < fe && fs < e)).toBe(true);
      },
    );
  });
}
