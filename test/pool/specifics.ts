/**
 * What the worker pools (threads and processes) must do beyond the conformance suite: crashes,
 * out of memory, timeouts and cancels of tasks that ignore their signal, resources, TypeScript
 * task modules. Every crash test also checks that the worker was replaced.
 */
import { threadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalPoolExecutor,
  ResourceUnavailableError,
  TaskCancelledError,
  TaskTimeoutError,
  WorkerCrashedError,
  type TaskEvent,
  type WorkerEvent,
} from 'weftjs';
import {
  allocate,
  crashOnce,
  exitWith,
  free,
  hang,
  holdGpu,
  hangWithTimeout,
  killSelf,
  needsTpu,
  needsTwoGpus,
  throwInTimer,
  useGpu,
  whoAmI,
} from '../fixtures/crashes.js';
import { sleep, whereAmI } from '../fixtures/tasks.js';
import { area } from '../fixtures/ts-syntax.js';
import { lines, open, rejection, tempFile, tempPath, thrown, until } from '../helpers/util.js';

const graceMs = 300;

export function poolSpecifics(scheduler: 'threads' | 'processes'): void {
  describe(`LocalPoolExecutor (${scheduler}) specifics`, () => {
    let ex: LocalPoolExecutor;
    const workerEvents: WorkerEvent[] = [];
    const taskEvents: TaskEvent[] = [];
    const count = (type: WorkerEvent['type']): number =>
      workerEvents.filter((e) => e.type === type).length;
    /** The worker a task started on, from its `started` event. */
    const workerOf = (key: string): string | undefined =>
      taskEvents.find((e) => e.key === key && e.type === 'started')?.worker;
    /** Waits for a `left` or `crashed` event of `worker`, and for a replacement to join. */
    async function replaced(worker: string, joinedBefore: number): Promise<WorkerEvent> {
      let gone: WorkerEvent | undefined;
      await until(
        () =>
          (gone = workerEvents.find(
            (e) => e.worker === worker && (e.type === 'left' || e.type === 'crashed'),
          )) !== undefined,
        `worker ${worker} to be stopped`,
      );
      await until(() => count('joined') > joinedBefore, 'a replacement worker to join');
      return gone!;
    }

    beforeAll(async () => {
      ex = new LocalPoolExecutor({
        scheduler,
        workers: 2,
        graceMs,
        resourceLimits: { maxOldGenerationSizeMb: 32 },
      });
      ex.events.on('*', (e) => {
        if ('key' in e) taskEvents.push(e);
        else if (e.type !== 'warning') workerEvents.push(e);
      });
      await ex.start();
    }, 60_000);
    afterAll(() => ex?.shutdown({ cancelPending: true }), 60_000);

    it('announces its workers by name when it starts', () => {
      const joined = workerEvents.filter((e) => e.type === 'joined');
      expect(joined).toHaveLength(2);
      for (const e of joined) expect(e.worker).toMatch(new RegExp(`^${scheduler}-\\d+$`));
      expect(new Set(joined.map((e) => e.worker)).size).toBe(2);
    });

    it('fails a task whose worker exits with WorkerCrashedError naming the code, and replaces the worker', async () => {
      const joinedBefore = count('joined');
      const bystander = ex.submit(sleep, 400);
      const crashing = ex.submit(exitWith, 3);
      const error = (await rejection(crashing)) as WorkerCrashedError;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error.code).toBe('WORKER_CRASHED');
      expect(error.exitCode).toBe(3);
      expect(error.signal).toBeNull();
      expect(error.message).toContain('3');
      expect(crashing.status).toBe('error');
      // Other tasks are unaffected.
      expect(await bystander).toBe('slept');
      const crashed = workerEvents.find((e) => e.type === 'crashed' && e.exitCode === 3);
      expect(crashed).toBeDefined();
      expect(crashed!.worker).toBe(workerOf(crashing.key));
      await replaced(crashed!.worker, joinedBefore);
      // Work goes on, on both workers.
      expect(await ex.wait(ex.map(whoAmI, [1, 2, 3, 4]))).toHaveLength(4);
      const failed = taskEvents.filter((e) => e.key === crashing.key && e.type === 'failed');
      expect(failed).toHaveLength(1);
      const explained = await ex.explain(crashing);
      expect(explained.status).toBe('error');
      expect(explained.attempts).toEqual([
        expect.objectContaining({
          number: 1,
          worker: crashed!.worker,
          outcome: 'crashed',
          exitCode: 3,
          signal: null,
          outOfMemory: false,
        }),
      ]);
      expect(explained.text).toContain(`attempt 1 on ${crashed!.worker} crashed its worker after`);
      expect(explained.text).toContain('(exit code 3)');
    });

    it('retries a task whose worker crashed when it has retries left', async () => {
      const crashesBefore = count('crashed');
      const f = ex.submit(crashOnce);
      expect(await f).toBe(2);
      expect(count('crashed')).toBeGreaterThan(crashesBefore);
      expect(taskEvents.some((e) => e.key === f.key && e.type === 'retried')).toBe(true);
      expect(taskEvents.filter((e) => e.key === f.key && e.type === 'finished')).toHaveLength(1);
    });

    it('reports an uncaught exception thrown in a timer as a crash, and replaces the worker', async () => {
      const joinedBefore = count('joined');
      const f = ex.submit(throwInTimer);
      const error = (await rejection(f)) as WorkerCrashedError;
      expect(error).toBeInstanceOf(WorkerCrashedError);
      expect(error.message).toContain('thrown in a timer');
      expect((error.cause as Error).name).toBe('TypeError');
      await replaced(workerOf(f.key)!, joinedBefore);
      expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
    });

    it(
      'fails a task that runs out of memory under resourceLimits with WorkerCrashedError',
      { timeout: 60_000 },
      async () => {
        const joinedBefore = count('joined');
        const f = ex.submit(allocate);
        const error = (await rejection(f)) as WorkerCrashedError;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.message).toMatch(/memory/i);
        expect(error.outOfMemory).toBe(true);
        await replaced(workerOf(f.key)!, joinedBefore);
        const explained = await ex.explain(f);
        expect(explained.attempts[0]).toMatchObject({ outcome: 'crashed', outOfMemory: true });
        expect(explained.text).toContain('it ran out of memory');
        expect(explained.text).toMatch(/maxOldGenerationSizeMb/);
        expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      },
    );

    if (scheduler === 'processes') {
      it('names the signal when a worker process is killed, and replaces it', async () => {
        const joinedBefore = count('joined');
        const f = ex.submit(killSelf, 'SIGKILL');
        const error = (await rejection(f)) as WorkerCrashedError;
        expect(error).toBeInstanceOf(WorkerCrashedError);
        expect(error.signal).toBe('SIGKILL');
        expect(error.message).toContain('SIGKILL');
        const crashed = await replaced(workerOf(f.key)!, joinedBefore);
        expect(crashed.type).toBe('crashed');
        expect(crashed.signal).toBe('SIGKILL');
        const explained = await ex.explain(f);
        expect(explained.attempts[0]).toMatchObject({
          outcome: 'crashed',
          signal: 'SIGKILL',
          worker: crashed.worker,
        });
        expect(explained.text).toContain(`on ${crashed.worker} crashed its worker`);
        expect(explained.text).toContain('killed by signal SIGKILL');
        expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      });

      it('runs tasks in other processes', async () => {
        const places = await ex.wait([ex.submit(whereAmI), ex.submit(whereAmI)]);
        for (const place of places) expect(place.pid).not.toBe(process.pid);
      });
    } else {
      it('runs tasks on other threads of this process', async () => {
        const places = await ex.wait([ex.submit(whereAmI), ex.submit(whereAmI)]);
        for (const place of places) {
          expect(place.pid).toBe(process.pid);
          expect(place.threadId).not.toBe(threadId);
        }
      });
    }

    it('times out a task that ignores its signal and stops its worker after the grace period', async () => {
      const file = tempFile('hang');
      const joinedBefore = count('joined');
      const submitted = Date.now();
      const f = ex.submit(hangWithTimeout, file, 20_000);
      const error = await rejection(f);
      expect(error).toBeInstanceOf(TaskTimeoutError);
      expect(Date.now() - submitted).toBeLessThan(10_000);
      expect(lines(file)).toEqual(['started']);
      const stopped = await replaced(workerOf(f.key)!, joinedBefore);
      // Stopped after timeoutMs (300) plus graceMs (300), long before the 20 s loop would end.
      expect(stopped.time - submitted).toBeGreaterThanOrEqual(300 + graceMs - 50);
      expect(stopped.time - submitted).toBeLessThan(10_000);
      expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      expect(Date.now() - submitted).toBeLessThan(15_000);
      const explained = await ex.explain(f);
      expect(explained.attempts).toEqual([
        expect.objectContaining({ outcome: 'timeout', timeoutMs: 300, worker: stopped.worker }),
      ]);
      expect(explained.text).toContain(`attempt 1 on ${stopped.worker} timed out after`);
      expect(explained.text).toContain('past its limit of timeoutMs 300');
    });

    it('cancels a running task that ignores its signal by replacing its worker', async () => {
      const file = tempFile('hang');
      const joinedBefore = count('joined');
      const f = ex.submit(hang, file, 20_000);
      await until(() => lines(file).includes('started'), 'the task to start');
      const cancelled = Date.now();
      expect(await f.cancel()).toBe(true);
      expect(await rejection(f)).toBeInstanceOf(TaskCancelledError);
      expect(f.status).toBe('cancelled');
      const stopped = await replaced(workerOf(f.key)!, joinedBefore);
      expect(stopped.time - cancelled).toBeGreaterThanOrEqual(graceMs - 50);
      expect(stopped.time - cancelled).toBeLessThan(10_000);
      expect(await ex.submit(whoAmI)).toBeGreaterThan(0);
      const explained = await ex.explain(f);
      expect(explained.attempts).toEqual([
        expect.objectContaining({ outcome: 'cancelled', worker: stopped.worker }),
      ]);
      expect(explained.text).toContain(
        `was cancelled by Future.cancel() while it was running on ${stopped.worker}, after`,
      );
    });

    it('runs a TypeScript task module (enum, parameter properties) in its workers', async () => {
      expect(await ex.submit(area, 'square', 4)).toBe('square:16');
      expect(await ex.wait(ex.map(area, ['circle', 'square'], [1, 3]))).toEqual([
        'circle:3',
        'square:9',
      ]);
    });

    it('refuses at submit a task needing a resource the pool does not offer', () => {
      const error = thrown(() => ex.submit(useGpu, '/dev/null', 1));
      expect(error).toBeInstanceOf(ResourceUnavailableError);
      expect((error as ResourceUnavailableError).code).toBe('RESOURCE_UNAVAILABLE');
      expect((error as Error).message).toContain('GPU');
    });
  });

  describe(`LocalPoolExecutor (${scheduler}) resources`, () => {
    it(
      'explains a task waiting for a resource: how much is offered, free, and which task holds it',
      { timeout: 60_000 },
      async () => {
        await new LocalPoolExecutor({ scheduler, workers: 2, resources: { GPU: 1 } }).start(
          async (pool) => {
            const gate = tempPath('gate');
            const log = tempFile('holder');
            const holder = pool.submit(holdGpu, gate, log);
            await until(() => lines(log).includes('started'), 'the GPU holder to start');
            const waiting = pool.submit(holdGpu, gate, tempFile('second'));
            let explained = await pool.explain(waiting);
            // Ready at first; blocked once the pool tried to start it.
            for (let i = 0; i < 100 && !explained.text.includes('resource GPU'); i++) {
              await new Promise((r) => setTimeout(r, 10));
              explained = await pool.explain(waiting);
            }
            expect(explained.status).toBe('pending');
            expect(explained.waitingFor).toEqual([]);
            expect(explained.attempts).toEqual([]);
            expect(explained.text).toContain(
              `waits for resource GPU: it needs 1, LocalPoolExecutor (${scheduler}) offers GPU=1 in all, 0 is free, held by ${holder.key} (GPU=1)`,
            );
            open(gate);
            expect(await pool.wait([holder, waiting])).toEqual(['released', 'released']);
          },
        );
      },
    );

    it(
      'never overlaps two GPU=1 tasks on a GPU=1 pool, while a task without resources runs beside them',
      { timeout: 60_000 },
      async () => {
        const file = tempFile('intervals');
        await new LocalPoolExecutor({ scheduler, workers: 2, resources: { GPU: 1 } }).start(
          async (pool) => {
            // Load the fixture module in both workers first, so start-up does not skew intervals.
            await pool.wait(pool.map(free, ['/dev/null', '/dev/null'], [1, 1]));
            await pool.wait([
              ...pool.map(useGpu, Array<string>(4).fill(file), Array<number>(4).fill(100)),
              pool.submit(free, file, 300),
            ]);
            const tooMany = thrown(() => pool.submit(needsTwoGpus));
            expect(tooMany).toBeInstanceOf(ResourceUnavailableError);
            expect((tooMany as Error).message).toContain('GPU');
            const missing = thrown(() => pool.submit(needsTpu));
            expect(missing).toBeInstanceOf(ResourceUnavailableError);
            expect((missing as Error).message).toContain('TPU');
          },
        );
        const rows = lines(file).map((row) => row.split(' '));
        const gpu = rows
          .filter(([kind]) => kind === 'gpu')
          .map(([, start, end]) => [Number(start), Number(end)] as const)
          .sort((a, b) => a[0] - b[0]);
        expect(gpu).toHaveLength(4);
        for (let i = 1; i < gpu.length; i++)
          expect(gpu[i]![0]).toBeGreaterThanOrEqual(gpu[i - 1]![1]);
        const freeRows = rows.filter(([kind]) => kind === 'free');
        expect(freeRows).toHaveLength(1);
        const [fs, fe] = [Number(freeRows[0]![1]), Number(freeRows[0]![2])];
        expect(gpu.some(([s, e]) => s < fe && fs < e)).toBe(true);
      },
    );
  });
}
