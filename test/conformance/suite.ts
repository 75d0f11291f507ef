/**
 * The conformance suite: the same behavioural tests for every executor. Each executor's test file
 * calls `conformance(label, make, caps)`; `make` returns a new, unstarted executor.
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExecutorStateError,
  SerializationError,
  TaskCancelledError,
  TaskDefinitionError,
  TaskTimeoutError,
  UpstreamTaskError,
  WeftError,
  asCompleted,
  task,
  taskContext,
  unmapped,
  type Executor,
  type Future,
  type TaskEvent,
  type WeftEvent,
} from 'weft';
import {
  add,
  alwaysFails,
  appendOrder,
  burn,
  context,
  double,
  echo,
  failCustom,
  failPlain,
  flaky,
  high,
  low,
  recordRun,
  shape,
  sleep,
  sleepRecord,
  slowWithTimeout,
  sum,
  throwValue,
} from './tasks.js';

export interface Capabilities {
  /** Runs in the caller's realm: closures work and nothing is serialized. */
  inline: boolean;
  /** LocalExecutor: a synchronous task settles inside submit. */
  immediate: boolean;
  /** Tasks can run at the same time. */
  parallel: boolean;
}

const tempFile = (name: string): string => {
  const file = join(mkdtempSync(join(tmpdir(), 'weft-conf-')), name);
  writeFileSync(file, '');
  return file;
};
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const rejection = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise).then(
    () => {
      throw new Error('expected a rejection, but the promise fulfilled');
    },
    (error: unknown) => error,
  );
async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function conformance(label: string, make: () => Executor, caps: Capabilities): void {
  describe(`${label}: conformance`, () => {
    let ex: Executor;
    beforeAll(async () => {
      ex = await make().start();
    }, 60_000);
    afterAll(async () => {
      await ex.shutdown({ cancelPending: true });
    }, 60_000);

    describe('tasks and submit', () => {
      it('runs a task and a plain function and returns their values', async () => {
        expect(await ex.submit(add, 2, 3)).toBe(5);
        expect(await ex.submit((a: number, b: number) => a * b, 6, 7)).toBe(42);
        expect(
          await ex.submit(async function later(x: number) {
            await new Promise((r) => setTimeout(r, 5));
            return x + 1;
          }, 1),
        ).toBe(2);
      });

      it('gives each submission a unique key that starts with the task name', async () => {
        const a = ex.submit(add, 1, 1);
        const b = ex.submit(add, 1, 1);
        // Vitest's module transform may rename `function add` to `add2`; the key follows the task's name.
        expect(a.key.startsWith(`${add.taskName}-`)).toBe(true);
        expect(add.taskName).toMatch(/^add\d*$/);
        expect(a.key).not.toBe(b.key);
        await ex.wait([a, b]);
      });

      it('moves a future from pending or running to finished', async () => {
        const f = ex.submit(add, 1, 2);
        if (caps.immediate) expect(f.status).toBe('finished');
        else expect(['pending', 'running']).toContain(f.status);
        await f;
        expect(f.status).toBe('finished');
        expect(await f.result()).toBe(3);
      });

      it('throws at submit for what is not a function', () => {
        expect(() => (ex.submit as (fn: unknown) => unknown)(42)).toThrow(TaskDefinitionError);
      });

      if (caps.inline) {
        it('runs closures, since nothing leaves the caller', async () => {
          const outer = 10;
          expect(await ex.submit((x: number) => x + outer, 5)).toBe(15);
        });
      } else {
        it('refuses a closure at submit, naming the missing variable', () => {
          const apiKey = 'secret';
          const error = (() => {
            try {
              ex.submit((x: string) => x + apiKey, 'a');
            } catch (e) {
              return e;
            }
          })();
          expect(error).toBeInstanceOf(TaskDefinitionError);
          expect((error as Error).message).toContain("'apiKey'");
          expect((error as Error).message).toMatch(/argument|task\(\)/);
        });

        it('refuses an argument that cannot cross, naming its path', () => {
          expect(() => ex.submit(echo, { handler: () => 1 })).toThrow(SerializationError);
          try {
            ex.submit(add, 1, { handler: () => 1 } as never);
          } catch (error) {
            expect(error).toBeInstanceOf(SerializationError);
            expect((error as SerializationError).path).toBe('args[1].handler');
          }
          expect(() => ex.submit(echo, Symbol('s') as never)).toThrow(SerializationError);
          class Holder {
            callback = (): number => 1;
          }
          expect(() => ex.submit(echo, new Holder() as never)).toThrow(/args\[0\]\.callback/);
        });
      }
    });

    describe('values and errors', () => {
      it('keeps the types of values that cross', async () => {
        const value = {
          date: new Date(1_700_000_000_000),
          regexp: /we+ft/gi,
          map: new Map<unknown, unknown>([
            ['k', 1],
            [2, { deep: [1n, 2n] }],
          ]),
          set: new Set([1, 'two']),
          big: 12345678901234567890n,
          bytes: new Uint8Array([1, 2, 3]),
          floats: new Float64Array([0.5, -1]),
          buffer: new Uint8Array([9, 8]).buffer,
          nested: { list: [1, [2, [3]]], nothing: undefined, nan: NaN },
          error: new TypeError('as a value', { cause: new Error('inner') }),
        };
        const back = (await ex.submit(echo, value)) as typeof value;
        expect(back.date).toBeInstanceOf(Date);
        expect(back.date.getTime()).toBe(value.date.getTime());
        expect(back.regexp).toBeInstanceOf(RegExp);
        expect(back.regexp.source).toBe('we+ft');
        expect(back.regexp.flags).toBe('gi');
        expect(back.map).toBeInstanceOf(Map);
        expect(back.map.get(2)).toEqual({ deep: [1n, 2n] });
        expect(back.set).toBeInstanceOf(Set);
        expect([...back.set]).toEqual([1, 'two']);
        expect(back.big).toBe(12345678901234567890n);
        expect(back.bytes).toBeInstanceOf(Uint8Array);
        expect([...back.bytes]).toEqual([1, 2, 3]);
        expect(back.floats).toBeInstanceOf(Float64Array);
        expect(back.buffer).toBeInstanceOf(ArrayBuffer);
        expect(back.buffer.byteLength).toBe(2);
        expect(back.nested).toEqual({ list: [1, [2, [3]]], nothing: undefined, nan: NaN });
        expect('nothing' in back.nested).toBe(true);
        expect(back.error).toBeInstanceOf(TypeError);
        expect(back.error.message).toBe('as a value');
        expect((back.error.cause as Error).message).toBe('inner');
      });

      it('delivers a thrown error with its own name, message, stack, cause and properties', async () => {
        const error = (await rejection(ex.submit(failCustom, 'custom failure'))) as Error & {
          code?: string;
          detail?: unknown;
        };
        expect(error).toBeInstanceOf(Error);
        expect(error.name).toBe('CustomError');
        expect(error.message).toBe('custom failure');
        expect(error.code).toBe('E_CUSTOM');
        expect(error.detail).toEqual({ why: 'because' });
        expect(error.stack).toContain('failCustom');
        expect(error.cause).toBeInstanceOf(RangeError);
        expect((error.cause as Error).message).toBe('root cause');
        expect(ex.submit(failPlain, 'x').status).not.toBe('finished');
      });

      it('delivers a thrown non-Error value as that value', async () => {
        expect(await rejection(ex.submit(throwValue))).toEqual({ reason: 'not an error', n: 42 });
      });
    });

    describe('futures as arguments, map and wait', () => {
      it('passes futures nested in arrays and objects as their values', async () => {
        const a = ex.submit(add, 1, 2);
        const b = ex.submit(double, a);
        const total = ex.submit(shape, { a, list: [a, b, 10], nested: { b } });
        expect(await total).toBe(3 + (3 + 6 + 10) + 6);
        expect(await ex.submit(sum, [a, b, ex.submit(add, a, b)])).toBe(3 + 6 + 9);
      });

      it('fails a downstream task with UpstreamTaskError without running it', async () => {
        const file = tempFile('downstream');
        const root = ex.submit(failPlain, 'root failure');
        const middle = ex.submit(double, root);
        const last = ex.submit(recordRun, file, middle);
        const error = (await rejection(last)) as UpstreamTaskError;
        expect(error).toBeInstanceOf(UpstreamTaskError);
        expect(error.upstream).toBe(root.key);
        expect((error.cause as Error).message).toBe('root failure');
        expect(last.status).toBe('error');
        expect(middle.status).toBe('error');
        expect(lines(file)).toEqual([]);
      });

      it('fails a downstream of a cancelled task with UpstreamTaskError caused by TaskCancelledError', async () => {
        const upstream = ex.submit(sleep, 5_000);
        const downstream = ex.submit(echo, upstream);
        expect(await upstream.cancel()).toBe(true);
        const error = (await rejection(downstream)) as UpstreamTaskError;
        expect(error).toBeInstanceOf(UpstreamTaskError);
        expect(error.cause).toBeInstanceOf(TaskCancelledError);
      });

      it('maps with zip semantics, unmapped values and futures as elements', async () => {
        const f = ex.submit(add, 10, 10);
        const out = ex.map(add, [1, 2, f], unmapped(100));
        expect(out).toHaveLength(3);
        expect(await ex.wait(out)).toEqual([101, 102, 120]);
        expect(await ex.wait(ex.map(add, [1, 2], [10, 20]))).toEqual([11, 22]);
        expect(ex.map(add, [], [])).toEqual([]);
        expect(() => ex.map(add, [1, 2], [1])).toThrow(TaskDefinitionError);
      });

      it('runs every task of a multi-level map exactly once', async () => {
        const file = tempFile('runs');
        const first = ex.map(
          recordRun,
          Array(12).fill(file),
          Array.from({ length: 12 }, (_, i) => i),
        );
        const second = ex.map(recordRun, Array(12).fill(file), first);
        const pairs = ex.map(add, first, second);
        const total = ex.submit(sum, pairs);
        // Wait on overlapping shapes several times: nothing may run again.
        expect(await total).toBe(2 * 66);
        await ex.wait({ first, second, again: [first, second, pairs] });
        await ex.wait(second);
        const runs = lines(file);
        expect(runs).toHaveLength(24);
        expect(new Set(runs).size).toBe(24);
        for (const f of [...first, ...second])
          expect(runs.filter((k) => k === f.key)).toHaveLength(1);
      });

      it('waits on nested shapes and keeps other values by identity', async () => {
        const map = new Map([[1, 2]]);
        const date = new Date();
        const set = new Set([1]);
        const a = ex.submit(add, 1, 1);
        const result = await ex.wait({
          a,
          list: [a, [ex.submit(add, 2, 2)]],
          map,
          date,
          set,
          n: 5,
          s: 'x',
        });
        expect(result).toEqual({ a: 2, list: [2, [4]], map, date, set, n: 5, s: 'x' });
        expect(result.map).toBe(map);
        expect(result.date).toBe(date);
        expect(result.set).toBe(set);
        expect(await ex.wait(7)).toBe(7);
      });

      it('rejects wait with the error of the task that failed', async () => {
        const error = await rejection(
          ex.wait([ex.submit(add, 1, 1), ex.submit(failPlain, 'in wait')]),
        );
        expect((error as Error).message).toBe('in wait');
      });

      it('yields the very same futures from asCompleted, in completion order, failures included', async () => {
        const order: Future<unknown>[] = [];
        const futures: Future<unknown>[] = [
          ex.submit(sleep, 400),
          ex.submit(failPlain, 'quick failure'),
          ex.submit(sleep, 20),
        ];
        for (const f of futures) {
          const mark = (): void => void order.push(f);
          f.then(mark, mark);
        }
        const yielded: Future<unknown>[] = [];
        // TypeScript types a for-await variable as the awaited value; the iterator yields futures.
        for await (const item of asCompleted(futures) as AsyncIterable<unknown>) {
          const f = item as Future<unknown>;
          expect(['finished', 'error']).toContain(f.status);
          yielded.push(f);
        }
        expect(yielded).toHaveLength(3);
        for (const f of yielded) expect(futures).toContain(f);
        expect(yielded).toEqual(order);
        // A serial executor completes in submission order; the others finish the long sleep last.
        if (caps.parallel || caps.immediate) expect(yielded[yielded.length - 1]).toBe(futures[0]);
      });
    });

    describe('context, retries, timeouts, cancellation, priority', () => {
      it('gives a running task its context; outside a task taskContext() throws WeftError', async () => {
        const f = ex.submit(context);
        const ctx = await f;
        expect(ctx).toEqual({ attempt: 1, key: f.key, aborted: false });
        expect(() => taskContext()).toThrow(WeftError);
      });

      it('retries with a delay, counting attempts, keeping the key', async () => {
        const started = Date.now();
        const f = ex.submit(flaky);
        expect(await f).toEqual({ attempt: 3, key: f.key });
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
        const error = (await rejection(ex.submit(alwaysFails))) as Error;
        expect(error.message).toBe('attempt 2 failed');
      });

      it('fails an attempt past timeoutMs with TaskTimeoutError', async () => {
        const started = Date.now();
        const error = await rejection(ex.submit(slowWithTimeout));
        expect(error).toBeInstanceOf(TaskTimeoutError);
        expect((error as Error).message).toMatch(/timeoutMs of 300 ms/);
        expect(Date.now() - started).toBeLessThan(8_000);
      });

      it('cancels a running task: its future rejects and its signal fires', async () => {
        const file = tempFile('aborted');
        const f = ex.submit(sleepRecord, file, 10_000);
        await until(() => f.status === 'running', 10_000, 'the task to run');
        await new Promise((r) => setTimeout(r, 200));
        expect(await f.cancel()).toBe(true);
        expect(f.status).toBe('cancelled');
        expect(await rejection(f)).toBeInstanceOf(TaskCancelledError);
        await until(
          () => existsSync(file) && lines(file).includes('aborted'),
          10_000,
          'the abort to reach the task',
        );
        expect(await f.cancel()).toBe(false);
      });

      it('cancels a pending task so that it never runs', async () => {
        const file = tempFile('never');
        const gate = ex.submit(sleep, 300);
        const waiting = ex.submit(recordRun, file, gate as unknown as Future<number>);
        expect(await waiting.cancel()).toBe(true);
        expect(await rejection(waiting)).toBeInstanceOf(TaskCancelledError);
        await gate;
        await new Promise((r) => setTimeout(r, 100));
        expect(lines(file)).toEqual([]);
        const done = ex.submit(add, 1, 1);
        await done;
        expect(await done.cancel()).toBe(false);
      });

      if (!caps.immediate) {
        it('starts the higher-priority task first among tasks ready at the same time', async () => {
          const file = tempFile('order');
          const starts: string[] = [];
          const off = ex.events.on('started', (e) => starts.push(e.key));
          try {
            const blockers = [ex.submit(burn, 400), ex.submit(burn, 900)];
            await until(
              () => starts.length >= (caps.parallel ? 2 : 1),
              15_000,
              'the blockers to start',
            );
            const lo = ex.submit(low, file, 'low');
            const hi = ex.submit(high, file, 'high');
            const mid = ex.submit(appendOrder, file, 'mid');
            await ex.wait([lo, hi, mid, ...blockers]);
            expect(starts.indexOf(hi.key)).toBeLessThan(starts.indexOf(lo.key));
            expect(starts.indexOf(hi.key)).toBeGreaterThan(-1);
          } finally {
            off();
          }
        });
      }

      if (caps.parallel) {
        it('runs CPU-bound tasks at the same time', async () => {
          // Warm the workers so start-up does not hide the overlap.
          await ex.wait(ex.map(burn, [5, 5, 5, 5]));
          const [a, b] = await ex.wait(ex.map(burn, [600, 600]));
          expect(a![0]).toBeLessThan(b![1]);
          expect(b![0]).toBeLessThan(a![1]);
        });
      }
    });

    describe('events', () => {
      it('emits submitted first and exactly one terminal event per task', async () => {
        const seen: TaskEvent[] = [];
        const off = ex.events.on('*', (e: WeftEvent) => {
          if ('key' in e) seen.push(e);
        });
        try {
          const ok = ex.submit(add, 1, 2);
          const bad = ex.submit(failPlain, 'event failure');
          const cancelled = ex.submit(sleep, 5_000);
          await cancelled.cancel();
          await ex.wait(ok);
          await rejection(bad);
          const keys = [ok.key, bad.key, cancelled.key];
          await until(
            () =>
              keys.every((k) =>
                seen.some(
                  (e) => e.key === k && ['finished', 'failed', 'cancelled'].includes(e.type),
                ),
              ),
            10_000,
            'terminal events',
          );
          for (const key of keys) {
            const mine = seen.filter((e) => e.key === key);
            expect(mine[0]!.type).toBe('submitted');
            expect(
              mine.filter((e) => ['finished', 'failed', 'cancelled'].includes(e.type)),
            ).toHaveLength(1);
            for (const e of mine) expect(typeof e.time).toBe('number');
          }
          expect(seen.find((e) => e.key === ok.key && e.type === 'finished')!.name).toBe(
            add.taskName,
          );
          expect(seen.find((e) => e.key === bad.key && e.type === 'failed')!.error!.message).toBe(
            'event failure',
          );
          expect(seen.some((e) => e.key === cancelled.key && e.type === 'cancelled')).toBe(true);
        } finally {
          off();
        }
      });
    });
  });

  describe(`${label}: lifecycle`, () => {
    it('throws ExecutorStateError before start, after shutdown, and on a second start', async () => {
      const ex = make();
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      expect(() => ex.map(add, [1], [1])).toThrow(ExecutorStateError);
      await ex.start();
      await expect(ex.start()).rejects.toThrow(ExecutorStateError);
      expect(await ex.submit(add, 1, 1)).toBe(2);
      await ex.shutdown();
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      // The same executor may start again.
      await ex.start();
      expect(await ex.submit(add, 2, 2)).toBe(4);
      await ex.shutdown();
    });

    it('start(body) shuts down even when body throws; await using shuts down too', async () => {
      const ex = make();
      await expect(
        ex.start(() => {
          throw new Error('body failed');
        }),
      ).rejects.toThrow('body failed');
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      expect(await ex.start((e) => e.submit(add, 3, 4))).toBe(7);
      {
        await using scoped = await make().start();
        expect(await scoped.submit(add, 1, 2)).toBe(3);
        var leaked = scoped; // eslint-disable-line no-var -- read after the scope ends
      }
      expect(() => leaked.submit(add, 1, 1)).toThrow(ExecutorStateError);
    });

    it('shutdown waits for queued tasks, is idempotent, and cancelPending cancels', async () => {
      const ex = await make().start();
      const file = tempFile('drain');
      const queued = ex.map(recordRun, Array(6).fill(file), [1, 2, 3, 4, 5, 6]);
      const first = ex.shutdown();
      const second = ex.shutdown();
      expect(second).toBe(first);
      await first;
      expect(queued.every((f) => f.status === 'finished')).toBe(true);
      expect(lines(file)).toHaveLength(6);

      const ex2 = await make().start();
      const running = ex2.submit(sleep, 10_000);
      const later = ex2.map(sleep, [10_000, 10_000, 10_000]);
      const started = Date.now();
      await ex2.shutdown({ cancelPending: true });
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(await rejection(running)).toBeInstanceOf(TaskCancelledError);
      for (const f of later) expect(await rejection(f)).toBeInstanceOf(TaskCancelledError);
    });
  });

  describe(`${label}: task definitions`, () => {
    it('parses resource tags at definition time and rejects malformed ones, naming the tag', () => {
      const t = task(function tagged() {}, {
        tags: ['resource:GPU=1', 'resource:mem=0.5', 'plain'],
        resources: { disk: 2 },
      });
      expect(t.options.resources).toEqual({ GPU: 1, mem: 0.5, disk: 2 });
      for (const bad of ['resource:GPU', 'resource:GPU=x', 'resource:GPU=-1', 'resource:=1']) {
        expect(() => task(function badTag() {}, { tags: [bad] })).toThrow(TaskDefinitionError);
        expect(() => task(function badTag() {}, { tags: [bad] })).toThrow(bad);
      }
      expect(() => task(42 as never)).toThrow(TaskDefinitionError);
      expect(() => task(function f() {}, { retries: -1 })).toThrow(TaskDefinitionError);
      expect(() => task(function f() {}, { timeoutMs: 0 })).toThrow(TaskDefinitionError);
    });
  });
}
