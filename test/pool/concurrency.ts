/**
 * Several tasks in flight on one pool worker (`concurrency` above 1): they interleave at their
 * awaits, keep their own context, are cancelled one at a time, and when a worker goes down each of
 * them gets exactly one outcome. Rendezvous and gates, never sleeps, decide what is in flight.
 */
import { describe, expect, it } from 'vitest';
import {
  LocalPoolExecutor,
  TaskCancelledError,
  WorkerCrashedError,
  type TaskEvent,
  type WeftEvent,
  type WorkerEvent,
} from 'weftjs';
import {
  cooperative,
  cooperativeRetried,
  crashWhenFull,
  gpuWait,
  rendezvous,
  stubborn,
} from '../fixtures/concurrent.js';
import { lines, open, rejection, tempFile, tempPath, until } from '../helpers/util.js';

const graceMs = 300;

/** Records every event of an executor. */
function recorder(ex: LocalPoolExecutor): { tasks: TaskEvent[]; workers: WorkerEvent[] } {
  const tasks: TaskEvent[] = [];
  const workers: WorkerEvent[] = [];
  ex.events.on('*', (e: WeftEvent) => {
    if ('key' in e) tasks.push(e);
    else if (e.type !== 'warning') workers.push(e);
  });
  return { tasks, workers };
}

export function concurrencySpecifics(scheduler: 'threads' | 'processes'): void {
  describe(`LocalPoolExecutor (${scheduler}) with several tasks per worker`, () => {
    it('runs N tasks that can only finish together on one worker with concurrency N, each with its own context', async () => {
      const n = 8;
      await new LocalPoolExecutor({ scheduler, workers: 1, concurrency: n }).start(async (ex) => {
        const file = tempFile('rendezvous');
        const futures = Array.from({ length: n }, () => ex.submit(rendezvous, file, n));
        const results = await ex.wait(futures);
        expect(new Set(results.map((r) => `${r.pid}:${r.threadId}`)).size).toBe(1);
        results.forEach((r, i) => {
          // The context survives the interleaved awaits: each task still sees its own key.
          expect(r.before).toBe(futures[i]!.key);
          expect(r.after).toBe(futures[i]!.key);
          expect(r.attempt).toBe(1);
        });
      });
    });

    it('spreads N x workers in-flight tasks over the workers', async () => {
      await new LocalPoolExecutor({ scheduler, workers: 2, concurrency: 4 }).start(async (ex) => {
        const file = tempFile('rendezvous');
        const results = await ex.wait(
          Array.from({ length: 8 }, () => ex.submit(rendezvous, file, 8)),
        );
        const places = results.map((r) => `${r.pid}:${r.threadId}`);
        expect(new Set(places).size).toBe(2);
        for (const place of new Set(places)) {
          expect(places.filter((p) => p === place)).toHaveLength(4);
        }
      });
    });

    it('never has more than concurrency tasks of a worker in flight', async () => {
      await new LocalPoolExecutor({ scheduler, workers: 1, concurrency: 3 }).start(async (ex) => {
        const gate = tempPath('gate');
        const log = tempFile('log');
        const futures = Array.from({ length: 7 }, () => ex.submit(cooperative, gate, log));
        await until(() => lines(log).length === 3, 'three tasks in flight');
        // Nothing announces a start that must not happen: give a fourth every chance to start.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(lines(log)).toHaveLength(3);
        expect(futures.filter((f) => f.status === 'running')).toHaveLength(3);
        open(gate);
        expect(await ex.wait(futures)).toHaveLength(7);
        expect(lines(log)).toHaveLength(7);
      });
    });

    it('cancels one of many tasks on a worker and leaves the others running', async () => {
      const ex = new LocalPoolExecutor({ scheduler, workers: 1, concurrency: 4, graceMs });
      const events = recorder(ex);
      await ex.start(async () => {
        const gate = tempPath('gate');
        const log = tempFile('log');
        const futures = Array.from({ length: 4 }, () => ex.submit(cooperative, gate, log));
        await until(() => lines(log).length === 4, 'four tasks in flight');
        await until(() => futures.every((f) => f.status === 'running'), 'four running');
        expect(await futures[1]!.cancel()).toBe(true);
        expect(await rejection(futures[1]!)).toBeInstanceOf(TaskCancelledError);
        for (const i of [0, 2, 3]) expect(futures[i]!.status).toBe('running');
        open(gate);
        expect(await ex.wait([futures[0]!, futures[2]!, futures[3]!])).toEqual([
          futures[0]!.key,
          futures[2]!.key,
          futures[3]!.key,
        ]);
        // The worker was never stopped: a cooperative task leaves by itself.
        expect(events.workers.filter((e) => e.type !== 'joined')).toEqual([]);
      });
    });

    it('stops a task that ignores its abort and re-runs its neighbours elsewhere without using up their retries', async () => {
      const ex = new LocalPoolExecutor({ scheduler, workers: 1, concurrency: 4, graceMs });
      const events = recorder(ex);
      await ex.start(async () => {
        const gate = tempPath('gate');
        const log = tempFile('log');
        const neighbours = Array.from({ length: 3 }, () => ex.submit(cooperative, gate, log));
        const culprit = ex.submit(stubborn, log);
        await until(() => lines(log).length === 4, 'four tasks in flight');
        await until(() => culprit.status === 'running', 'the stubborn task to run');
        expect(await culprit.cancel()).toBe(true);
        expect(await rejection(culprit)).toBeInstanceOf(TaskCancelledError);
        // After the grace period its worker is stopped, and the neighbours start again.
        await until(() => lines(log).length === 7, 'the neighbours to start again');
        open(gate);
        expect(await ex.wait(neighbours)).toEqual(neighbours.map((f) => f.key));
        for (const f of neighbours) {
          const mine = events.tasks.filter((e) => e.key === f.key);
          // Same attempt number both times, a second `started`, no `retried`, one terminal event.
          expect(lines(log).filter((l) => l === `start ${f.key} 1`)).toHaveLength(2);
          expect(mine.filter((e) => e.type === 'started')).toHaveLength(2);
          expect(mine.filter((e) => e.type === 'retried')).toHaveLength(0);
          expect(mine.filter((e) => ['finished', 'failed', 'cancelled'].includes(e.type))).toEqual([
            expect.objectContaining({ type: 'finished', attempt: 1 }),
          ]);
        }
        const left = events.workers.filter((e) => e.type === 'left');
        expect(left).toHaveLength(1);
        expect(events.workers.filter((e) => e.type === 'joined')).toHaveLength(2);
      });
    });

    const crashes: ('exit' | 'kill' | 'oom')[] =
      scheduler === 'processes' ? ['exit', 'kill', 'oom'] : ['exit', 'oom'];
    for (const how of crashes) {
      it(
        `fails every task in flight when their worker dies (${how}), or retries those with retries left`,
        { timeout: 60_000 },
        async () => {
          const ex = new LocalPoolExecutor({
            scheduler,
            workers: 1,
            concurrency: 4,
            graceMs,
            resourceLimits: { maxOldGenerationSizeMb: 48 },
          });
          const events = recorder(ex);
          await ex.start(async () => {
            const gate = tempPath('gate');
            const log = tempFile('log');
            const plain = [ex.submit(cooperative, gate, log), ex.submit(cooperative, gate, log)];
            const retried = ex.submit(cooperativeRetried, gate, log);
            const culprit = ex.submit(crashWhenFull, log, 3, how);
            const errors = await Promise.all([...plain, culprit].map((f) => rejection(f)));
            for (const error of errors) {
              expect(error).toBeInstanceOf(WorkerCrashedError);
              // The message says how many tasks shared the worker.
              expect((error as Error).message).toContain('one of 4 tasks in flight');
            }
            if (how === 'exit') expect((errors[0] as WorkerCrashedError).exitCode).toBe(3);
            if (how === 'kill') expect((errors[0] as WorkerCrashedError).signal).toBe('SIGKILL');
            if (how === 'oom') expect((errors[0] as Error).message).toMatch(/memory/i);
            // The task with a retry runs again on the replacement worker.
            await until(() => lines(log).includes(`start ${retried.key} 2`), 'the retry');
            open(gate);
            expect(await retried).toBe(`${retried.key} 2`);
            const terminal = events.tasks.filter((e) =>
              ['finished', 'failed', 'cancelled'].includes(e.type),
            );
            expect(terminal).toHaveLength(4);
            expect(events.workers.filter((e) => e.type === 'crashed')).toHaveLength(1);
            expect(events.workers.filter((e) => e.type === 'joined')).toHaveLength(2);
          });
        },
      );
    }

    it('never over-commits a resource while tasks share workers', async () => {
      await new LocalPoolExecutor({
        scheduler,
        workers: 2,
        concurrency: 8,
        resources: { GPU: 2 },
      }).start(async (ex) => {
        const file = tempFile('gpu');
        await ex.wait(Array.from({ length: 12 }, () => ex.submit(gpuWait, file, 60)));
        const spans = lines(file).map((l) => l.split(' ').map(Number) as [number, number]);
        expect(spans).toHaveLength(12);
        for (const [start] of spans) {
          const holding = spans.filter(([s, e]) => s <= start && start < e).length;
          expect(holding).toBeLessThanOrEqual(2);
        }
      });
    });
  });
}
