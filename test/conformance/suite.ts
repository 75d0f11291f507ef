/**
 * The conformance suite: the behaviour API.md promises on every executor. Each executor's test
 * file calls `conformance(label, make, caps)`; `make` returns a new, unstarted executor.
 *
 * Most tests share one started executor per suite (they are independent of each other); the
 * lifecycle tests make their own. What happens in another thread or process is observed through
 * temp files the tasks append to, and tasks are held back with file gates (`gated`), not sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DistributedExecutor,
  ExecutorStateError,
  LocalExecutor,
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
  type Explanation,
  type Future,
  type TaskEvent,
  type WeftEvent,
} from 'weftjs';
import {
  CustomError,
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
  gated,
  high,
  low,
  napRecord,
  recordPair,
  recordRun,
  recordSum,
  shape,
  sleep,
  sleepRecord,
  slowOnce,
  slowWithTimeout,
  sum,
  throwString,
  throwValue,
} from '../fixtures/tasks.js';
import { lines, open, rejection, tempFile, tempPath, thrown, until } from '../helpers/util.js';

export interface Capabilities {
  /** Runs in the caller's realm: closures work and nothing is serialized. */
  inline: boolean;
  /** LocalExecutor: a synchronous task settles inside submit. */
  immediate: boolean;
  /** Tasks can run at the same time. */
  parallel: boolean;
  /**
   * For parallel executors: the same executor with a single worker, for the tests whose outcome
   * is only defined when one task runs at a time (priority order). Serial executors use `make`.
   */
  single?: () => Executor;
}

const terminal = new Set(['finished', 'failed', 'cancelled']);

export function conformance(label: string, make: () => Executor, caps: Capabilities): void {
  describe(`${label}: conformance`, () => {
    let ex: Executor;
    beforeAll(async () => {
      ex = await make().start();
    }, 60_000);
    afterAll(async () => {
      await ex?.shutdown({ cancelPending: true });
    }, 60_000);

    describe('tasks and submit', () => {
      it('runs a task and a plain function, sync and async, and returns their values', async () => {
        expect(await ex.submit(add, 2, 3)).toBe(5);
        expect(await ex.submit((a: number, b: number) => a * b, 6, 7)).toBe(42);
        expect(
          await ex.submit(async function later(x: number) {
            await new Promise((r) => setTimeout(r, 5));
            return x + 1;
          }, 1),
        ).toBe(2);
        // A task is callable like the function it wraps.
        expect(add(20, 22)).toBe(42);
      });

      it('gives each submission a unique key that starts with the task name', async () => {
        const futures = [
          ex.submit(add, 1, 1),
          ex.submit(add, 1, 1),
          ...ex.map(add, [1, 2], [3, 4]),
        ];
        // Vitest's module transform may rename `function add` to `add2`; the key follows the task's name.
        expect(add.taskName).toMatch(/^add\d*$/);
        for (const f of futures) expect(f.key.startsWith(`${add.taskName}-`)).toBe(true);
        expect(new Set(futures.map((f) => f.key)).size).toBe(futures.length);
        const plain = ex.submit(
          function multiply(a: number, b: number) {
            return a * b;
          },
          2,
          3,
        );
        expect(plain.key.startsWith('multiply')).toBe(true);
        await ex.wait([futures, plain]);
      });

      it('moves a future through pending, running, finished, error and cancelled', async () => {
        const gate = tempPath('gate');
        const upstream = ex.submit(gated, gate);
        await until(() => upstream.status === 'running', 'the gated task to run');
        const downstream = ex.submit(double, ex.submit(add, 1, 1));
        const waiting = ex.submit(echo, upstream);
        expect(waiting.status).toBe('pending');
        open(gate);
        expect(await waiting).toBe('opened');
        expect(upstream.status).toBe('finished');
        expect(waiting.status).toBe('finished');
        expect(await downstream).toBe(4);
        expect(await downstream.result()).toBe(4);

        const bad = ex.submit(failPlain, 'status error');
        await rejection(bad);
        expect(bad.status).toBe('error');
        await expect(bad.result()).rejects.toThrow('status error');

        const cancelled = ex.submit(sleep, 10_000);
        await cancelled.cancel();
        expect(cancelled.status).toBe('cancelled');
      });

      if (caps.immediate) {
        it('settles a synchronous task inside submit', () => {
          expect(ex.submit(add, 1, 2).status).toBe('finished');
          expect(ex.submit(failPlain, 'now').status).toBe('error');
        });
      } else {
        it('returns from submit before the task has finished', async () => {
          const f = ex.submit(add, 1, 2);
          expect(['pending', 'running']).toContain(f.status);
          expect(await f).toBe(3);
        });
      }

      it('throws at submit for what is not a function or task', () => {
        const error = thrown(() => (ex.submit as (fn: unknown) => unknown)(42));
        expect(error).toBeInstanceOf(WeftError);
        expect(() => (ex.map as (fn: unknown, ...a: unknown[]) => unknown)('add', [1])).toThrow(
          WeftError,
        );
      });

      if (caps.inline) {
        it('runs closures and serializes nothing', async () => {
          const outer = 10;
          expect(await ex.submit((x: number) => x + outer, 5)).toBe(15);
          class Holder {
            callback = (): number => 1;
          }
          const value = { handler: () => 2, holder: new Holder(), symbol: Symbol('s') };
          expect(await ex.submit(echo, value)).toBe(value);
        });
      } else {
        it('refuses a closure at submit with TaskDefinitionError naming the missing variable', () => {
          const apiKey = 'secret';
          const error = thrown(() => ex.submit((x: string) => x + apiKey, 'a'));
          expect(error).toBeInstanceOf(TaskDefinitionError);
          expect((error as Error).message).toContain('apiKey');
        });

        it('refuses an argument that cannot cross with SerializationError naming its path', () => {
          const handler = thrown(() => ex.submit(add, 1, { handler: () => {} } as never));
          expect(handler).toBeInstanceOf(SerializationError);
          expect((handler as SerializationError).path).toBe('args[1].handler');
          expect((handler as Error).message).toContain('args[1].handler');

          const symbol = thrown(() => ex.submit(echo, Symbol('s')));
          expect(symbol).toBeInstanceOf(SerializationError);
          expect((symbol as SerializationError).path).toBe('args[0]');

          class Holder {
            data = 1;
            callback = (): number => 1;
          }
          const instance = thrown(() => ex.submit(echo, { list: [new Holder()] }));
          expect(instance).toBeInstanceOf(SerializationError);
          expect((instance as SerializationError).path).toBe('args[0].list[0].callback');

          // Nothing was submitted: the executor still works.
          return expect(ex.submit(add, 1, 2)).resolves.toBe(3);
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
          set: new Set<unknown>([1, 'two', new Date(0)]),
          big: 12345678901234567890n,
          bytes: new Uint8Array([1, 2, 3]),
          ints: new Int32Array([-1, 7]),
          floats: new Float64Array([0.5, -1]),
          buffer: new Uint8Array([9, 8]).buffer,
          nested: { list: [1, [2, [3]]], nothing: undefined, nan: NaN, none: null },
          error: new TypeError('as a value', { cause: new Error('inner') }),
        };
        const back = (await ex.submit(echo, value)) as typeof value;
        expect(back.date).toBeInstanceOf(Date);
        expect(back.date.getTime()).toBe(value.date.getTime());
        expect(back.regexp).toBeInstanceOf(RegExp);
        expect(back.regexp.source).toBe('we+ft');
        expect(back.regexp.flags).toBe('gi');
        expect(back.map).toBeInstanceOf(Map);
        expect(back.map.get('k')).toBe(1);
        expect(back.map.get(2)).toEqual({ deep: [1n, 2n] });
        expect(back.set).toBeInstanceOf(Set);
        const [one, two, date] = [...back.set];
        expect([one, two]).toEqual([1, 'two']);
        expect(date).toBeInstanceOf(Date);
        expect(back.big).toBe(12345678901234567890n);
        expect(back.bytes).toBeInstanceOf(Uint8Array);
        expect([...back.bytes]).toEqual([1, 2, 3]);
        expect(back.ints).toBeInstanceOf(Int32Array);
        expect([...back.ints]).toEqual([-1, 7]);
        expect(back.floats).toBeInstanceOf(Float64Array);
        expect([...back.floats]).toEqual([0.5, -1]);
        expect(back.buffer).toBeInstanceOf(ArrayBuffer);
        expect([...new Uint8Array(back.buffer)]).toEqual([9, 8]);
        expect(back.nested).toEqual({
          list: [1, [2, [3]]],
          nothing: undefined,
          nan: NaN,
          none: null,
        });
        expect('nothing' in back.nested).toBe(true);
        expect(back.error).toBeInstanceOf(TypeError);
        expect(back.error.name).toBe('TypeError');
        expect(back.error.message).toBe('as a value');
        expect(back.error.cause).toBeInstanceOf(Error);
        expect((back.error.cause as Error).message).toBe('inner');
      });

      it('delivers a thrown error with its own name, message, stack, cause and properties', async () => {
        const error = (await rejection(ex.submit(failCustom, 'custom failure'))) as CustomError;
        expect(error).toBeInstanceOf(Error);
        expect(error.name).toBe('CustomError');
        expect(error.message).toBe('custom failure');
        expect(error.code).toBe('E_CUSTOM');
        expect(error.detail).toEqual({ why: 'because' });
        expect(error.stack).toContain('custom failure');
        expect(error.stack).toContain('failCustom');
        expect(error.cause).toBeInstanceOf(RangeError);
        expect((error.cause as Error).message).toBe('root cause');

        const plain = (await rejection(ex.submit(failPlain, 'plain failure'))) as Error;
        expect(plain).toBeInstanceOf(Error);
        expect(plain.name).toBe('Error');
        expect(plain.message).toBe('plain failure');
      });

      it('delivers a thrown non-Error value as that value', async () => {
        expect(await rejection(ex.submit(throwValue))).toEqual({ reason: 'not an error', n: 42 });
        expect(await rejection(ex.submit(throwString))).toBe('a plain string');
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

      it('fails a chain with UpstreamTaskError carrying the root cause and the first failed key; downstream never runs', async () => {
        const file = tempFile('downstream');
        const root = ex.submit(failPlain, 'root failure');
        const middle = ex.submit(double, root);
        const last = ex.submit(recordRun, file, middle);
        const error = (await rejection(last)) as UpstreamTaskError;
        expect(error).toBeInstanceOf(UpstreamTaskError);
        expect(error).toBeInstanceOf(WeftError);
        expect(error.code).toBe('UPSTREAM_TASK');
        expect(error.upstream).toBe(root.key);
        expect(error.cause).toBeInstanceOf(Error);
        expect((error.cause as Error).message).toBe('root failure');
        const direct = (await rejection(middle)) as UpstreamTaskError;
        expect(direct).toBeInstanceOf(UpstreamTaskError);
        expect(direct.upstream).toBe(root.key);
        expect(last.status).toBe('error');
        expect(middle.status).toBe('error');
        // A later task proves the executor moved on; the downstream still never ran.
        expect(await ex.submit(recordRun, file, 1)).toBe(1);
        expect(lines(file)).toHaveLength(1);
      });

      it('fails a downstream of a cancelled task with UpstreamTaskError caused by TaskCancelledError', async () => {
        const file = tempFile('after-cancel');
        const upstream = ex.submit(sleep, 10_000);
        const downstream = ex.submit(recordRun, file, upstream as unknown as Future<number>);
        expect(await upstream.cancel()).toBe(true);
        const error = (await rejection(downstream)) as UpstreamTaskError;
        expect(error).toBeInstanceOf(UpstreamTaskError);
        expect(error.upstream).toBe(upstream.key);
        expect(error.cause).toBeInstanceOf(TaskCancelledError);
        expect(downstream.status).toBe('error');
        expect(lines(file)).toEqual([]);
      });

      it('maps with zip semantics, unmapped values and futures as elements', async () => {
        const f = ex.submit(add, 10, 10);
        const out = ex.map(add, [1, 2, f], unmapped(100));
        expect(out).toHaveLength(3);
        expect(await ex.wait(out)).toEqual([101, 102, 120]);
        expect(await ex.wait(ex.map(add, [1, 2], [10, 20]))).toEqual([11, 22]);
        // Any iterable, and an unmapped future.
        expect(await ex.wait(ex.map(add, new Set([1, 2]), unmapped(f)))).toEqual([21, 22]);
        // Elements are arguments: futures nested inside them resolve too (the types allow only top-level).
        expect(await ex.wait(ex.map(sum, [[1, 2], [3], [f, 1]] as number[][]))).toEqual([3, 3, 21]);
      });

      it('returns [] for empty iterables and throws at call time for different lengths', () => {
        expect(ex.map(add, [], [])).toEqual([]);
        expect(ex.map(double, [])).toEqual([]);
        const error = thrown(() => ex.map(add, [1, 2], [1]));
        expect(error).toBeInstanceOf(WeftError);
        expect(() => ex.map(add, [1], [1, 2, 3])).toThrow(WeftError);
      });

      it('runs every task of a multi-level map exactly once', async () => {
        const file = tempFile('runs');
        const n = 12;
        const files = Array<string>(n).fill(file);
        const first = ex.map(
          recordRun,
          files,
          Array.from({ length: n }, (_, i) => i),
        );
        const second = ex.map(recordRun, files, first);
        const pairs = ex.map(recordPair, unmapped(file), first, second);
        const total = ex.submit(recordSum, file, pairs);
        const again = ex.submit(recordSum, file, [...first, ...second]);
        // Wait on overlapping shapes several times: nothing may run again.
        expect(await total).toBe(2 * 66);
        expect(await again).toBe(2 * 66);
        await ex.wait({ first, second, all: [first, second, pairs, total] });
        await ex.wait(second);
        await ex.wait(ex.map(double, pairs));
        const all = [...first, ...second, ...pairs, total, again];
        const runs = lines(file);
        expect(runs).toHaveLength(all.length);
        for (const f of all) expect(runs.filter((k) => k === f.key)).toHaveLength(1);
      });

      it('waits on nested shapes and keeps other values by identity', async () => {
        const map = new Map([[1, ex.submit(add, 0, 0)]]);
        const date = new Date();
        const set = new Set([1]);
        const instance = new (class Box {
          value = 1;
        })();
        const a = ex.submit(add, 1, 1);
        const result = await ex.wait({
          a,
          list: [a, [ex.submit(add, 2, 2)]],
          tuple: [a, 'x'] as const,
          map,
          date,
          set,
          instance,
          n: 5,
          s: 'x',
        });
        expect(result).toEqual({
          a: 2,
          list: [2, [4]],
          tuple: [2, 'x'],
          map,
          date,
          set,
          instance,
          n: 5,
          s: 'x',
        });
        expect(result.map).toBe(map);
        expect(result.map.get(1)).toBe(map.get(1)); // a future inside a Map stays a future
        expect(result.date).toBe(date);
        expect(result.set).toBe(set);
        expect(result.instance).toBe(instance);
        expect(await ex.wait(7)).toBe(7);
        expect(await ex.wait(a)).toBe(2);
      });

      it('rejects wait with the error of the task that failed', async () => {
        const error = await rejection(
          ex.wait({ ok: [ex.submit(add, 1, 1)], bad: ex.submit(failCustom, 'in wait') }),
        );
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).name).toBe('CustomError');
        expect((error as Error).message).toBe('in wait');
      });

      it('yields the very same futures from asCompleted, in completion order, failures included', async () => {
        // Completion order is fixed on every executor: `failed` first, then the gated task (its
        // gate opens once `failed` was yielded), then its downstream.
        const gate = tempPath('gate');
        const failed = ex.submit(failPlain, 'quick failure');
        const first = ex.submit(gated, gate);
        const last = ex.submit(echo, first);
        const futures: Future<unknown>[] = [last, first, failed];
        const order: Future<unknown>[] = [];
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
          if (f === failed) open(gate);
        }
        expect(yielded).toHaveLength(3);
        expect(yielded[0]).toBe(failed);
        expect(yielded[1]).toBe(first);
        expect(yielded[2]).toBe(last);
        expect(yielded).toEqual(order);
        expect(await last).toBe('opened');
      });
    });

    describe('context, retries, timeouts, cancellation', () => {
      it('gives a running task its context; outside a task taskContext() throws WeftError', async () => {
        const f = ex.submit(context);
        expect(await f).toEqual({ attempt: 1, key: f.key, aborted: false, hasSignal: true });
        expect(() => taskContext()).toThrow(WeftError);
      });

      it('retries with a delay, counting attempts 1, 2, 3 under one key', async () => {
        const file = tempFile('attempts');
        const retried: TaskEvent[] = [];
        const off = ex.events.on('retried', (e) => retried.push(e));
        try {
          const started = Date.now();
          const f = ex.submit(flaky, file);
          expect(await f).toEqual({ attempt: 3, key: f.key });
          // Two delays of 100 ms (generous lower bound for timer granularity).
          expect(Date.now() - started).toBeGreaterThanOrEqual(180);
          expect(lines(file)).toEqual([`${f.key} 1`, `${f.key} 2`, `${f.key} 3`]);
          await until(() => retried.filter((e) => e.key === f.key).length === 2, 'retried events');
        } finally {
          off();
        }
        const error = (await rejection(ex.submit(alwaysFails))) as Error;
        expect(error.message).toBe('attempt 2 failed');
      });

      it('fails an attempt past timeoutMs with TaskTimeoutError; the timeout is per attempt', async () => {
        const started = Date.now();
        const error = await rejection(ex.submit(slowWithTimeout));
        expect(error).toBeInstanceOf(TaskTimeoutError);
        expect((error as TaskTimeoutError).code).toBe('TASK_TIMEOUT');
        expect((error as Error).message).toContain('300');
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(Date.now() - started).toBeLessThan(8_000);
        // Attempt 1 times out, attempt 2 has a fresh clock and succeeds.
        expect(await ex.submit(slowOnce)).toBe(2);
      });

      it('cancels a running task: true, TaskCancelledError, and its signal fires', async () => {
        const file = tempFile('aborted');
        const f = ex.submit(sleepRecord, file, 10_000);
        await until(() => lines(file).includes('started'), 'the task to start');
        expect(await f.cancel()).toBe(true);
        expect(f.status).toBe('cancelled');
        const error = await rejection(f);
        expect(error).toBeInstanceOf(TaskCancelledError);
        expect((error as TaskCancelledError).code).toBe('TASK_CANCELLED');
        await until(() => lines(file).includes('aborted'), 'the abort to reach the task');
        // A task that stops within the grace period is left to finish its cleanup.
        await until(() => lines(file).includes('cleaned'), 'the task to clean up', 5_000);
        expect(await f.cancel()).toBe(false);
      });

      it('cancels a pending task so that it never runs; cancel after the end returns false', async () => {
        const file = tempFile('never');
        const gate = tempPath('gate');
        const blocker = ex.submit(gated, gate);
        const waiting = ex.submit(recordRun, file, blocker as unknown as Future<number>);
        expect(waiting.status).toBe('pending');
        expect(await waiting.cancel()).toBe(true);
        expect(waiting.status).toBe('cancelled');
        expect(await rejection(waiting)).toBeInstanceOf(TaskCancelledError);
        open(gate);
        expect(await blocker).toBe('opened');
        expect(await ex.submit(recordRun, file, 5)).toBe(5);
        await new Promise((r) => setTimeout(r, 100));
        expect(lines(file)).toHaveLength(1);
        const done = ex.submit(add, 1, 1);
        await done;
        expect(await done.cancel()).toBe(false);
        expect(done.status).toBe('finished');
        expect(await waiting.cancel()).toBe(false);
      });

      if (caps.parallel) {
        it('runs CPU-bound tasks at the same time', async () => {
          // Warm the workers so start-up does not hide the overlap.
          await ex.wait(ex.map(burn, [5, 5, 5, 5]));
          const [a, b] = await ex.wait(ex.map(burn, [200, 200]));
          expect(a![0]).toBeLessThan(b![1]);
          expect(b![0]).toBeLessThan(a![1]);
        });
      }
    });

    describe('explain', () => {
      const cluster = (): boolean => ex instanceof DistributedExecutor;

      it('names the upstream a task waits for, the worker running it, and a cancel', async () => {
        const gate = tempPath('gate');
        const log = tempFile('started');
        const upstream = ex.submit(gated, gate, log);
        await until(() => lines(log).includes('started'), 'the gated task to start');
        const downstream = ex.submit(echo, upstream);
        const waiting = await ex.explain(downstream);
        expect(waiting).toMatchObject({
          key: downstream.key,
          name: echo.taskName,
          status: 'pending',
          waitingFor: [upstream.key],
          attempts: [],
        });
        expect(waiting.text).toContain(upstream.key);
        expect(waiting.text).toMatch(/waits for 1 upstream task/);

        const running = await ex.explain(upstream);
        expect(running.status).toBe('running');
        expect(running.waitingFor).toEqual([]);
        expect(running.attempts).toHaveLength(1);
        expect(running.attempts[0]).toMatchObject({ number: 1, outcome: 'running' });
        if (cluster()) {
          // The worker that took the job, from BullMQ, and its heartbeat in the registry.
          expect(running.text).toMatch(/last sent a heartbeat .* ago/);
        } else {
          const worker = running.attempts[0]!.worker!;
          if (caps.inline) expect(worker).toBe('caller');
          expect(running.text).toContain(`is running on worker ${worker}, for `);
        }

        expect(await downstream.cancel()).toBe(true);
        const cancelled = await ex.explain(downstream);
        expect(cancelled.status).toBe('cancelled');
        expect(cancelled.text).toContain(
          'cancelled by Future.cancel() while it waited for upstream tasks',
        );
        open(gate);
        await upstream;
        const finished = await ex.explain(upstream);
        expect(finished.status).toBe('finished');
        expect(finished.attempts).toEqual([
          expect.objectContaining({ number: 1, outcome: 'finished' }),
        ]);
        expect(finished.text).toMatch(/finished/);
      });

      it('lists each failed attempt: a throw with retries, a timeout, an upstream failure', async () => {
        const retried = ex.submit(alwaysFails);
        await rejection(retried);
        const failed = await ex.explain(retried);
        expect(failed.status).toBe('error');
        expect(failed.attempts.map((a) => [a.number, a.outcome, a.error?.message])).toEqual([
          [1, 'failed', 'attempt 1 failed'],
          [2, 'failed', 'attempt 2 failed'],
        ]);
        for (const a of failed.attempts) {
          expect(typeof a.worker).toBe('string');
          expect(a.endedAt!).toBeGreaterThanOrEqual(a.startedAt!);
        }
        expect(failed.text).toContain('failed after 2 attempts');
        expect(failed.text).toContain('Error: attempt 1 failed');
        expect(failed.text).toContain('Error: attempt 2 failed');

        const slow = ex.submit(slowWithTimeout);
        await rejection(slow);
        const timedOut = await ex.explain(slow);
        expect(timedOut.attempts).toHaveLength(1);
        expect(timedOut.attempts[0]).toMatchObject({ outcome: 'timeout', timeoutMs: 300 });
        expect(timedOut.attempts[0]!.error!.name).toBe('TaskTimeoutError');
        expect(timedOut.text).toContain('timed out');
        expect(timedOut.text).toContain('timeoutMs 300');

        const root = ex.submit(failPlain, 'root cause here');
        const child = ex.submit(double, root);
        await rejection(child);
        const never = await ex.explain(child);
        expect(never.status).toBe('error');
        expect(never.attempts).toEqual([]);
        expect(never.text).toContain(`never ran: upstream task ${root.key} failed`);
        expect(never.text).toContain('root cause here');
      });

      it('explains a cancelled running task; refuses what is not its future', async () => {
        const file = tempFile('aborted');
        const f = ex.submit(sleepRecord, file, 10_000);
        await until(() => lines(file).includes('started'), 'the task to start');
        await f.cancel();
        const cancelled: Explanation = await ex.explain(f);
        expect(cancelled.status).toBe('cancelled');
        expect(cancelled.attempts.at(-1)).toMatchObject({ number: 1, outcome: 'cancelled' });
        expect(cancelled.text).toMatch(
          /cancelled by Future\.cancel\(\) (while it was running|after it was handed)/,
        );

        const other = await new LocalExecutor().start();
        try {
          const foreign = other.submit(add, 1, 2);
          await foreign;
          await expect(ex.explain(foreign)).rejects.toBeInstanceOf(WeftError);
        } finally {
          await other.shutdown();
        }
        await expect(ex.explain({} as Future<unknown>)).rejects.toThrow(/not a future/);
      });
    });

    describe('events', () => {
      it('emits submitted first and exactly one terminal event per task', async () => {
        const seen: TaskEvent[] = [];
        const off = ex.events.on('*', (e: WeftEvent) => {
          if ('key' in e) seen.push(e);
        });
        const futures: Future<unknown>[] = [];
        try {
          const ok = ex.submit(add, 1, 2);
          const bad = ex.submit(failPlain, 'event failure');
          const retriedThenOk = ex.submit(flaky, tempFile('event-attempts'));
          const cancelled = ex.submit(sleep, 10_000);
          const upstreamFailed = ex.submit(double, bad);
          const mapped = ex.map(add, [1, 2, 3], unmapped(1));
          futures.push(ok, bad, retriedThenOk, cancelled, upstreamFailed, ...mapped);
          await cancelled.cancel();
          await Promise.allSettled(futures);
          const keys = futures.map((f) => f.key);
          await until(
            () => keys.every((k) => seen.some((e) => e.key === k && terminal.has(e.type))),
            'terminal events',
          );
          // Late duplicates would arrive after the first terminal event: give them a moment.
          await new Promise((r) => setTimeout(r, 100));
          for (const key of keys) {
            const mine = seen.filter((e) => e.key === key);
            expect(mine[0]!.type).toBe('submitted');
            expect(mine.filter((e) => e.type === 'submitted')).toHaveLength(1);
            expect(mine.filter((e) => terminal.has(e.type))).toHaveLength(1);
            expect(terminal.has(mine[mine.length - 1]!.type)).toBe(true);
            for (const e of mine) expect(typeof e.time).toBe('number');
          }
          const typeOf = (f: Future<unknown>): string =>
            seen.find((e) => e.key === f.key && terminal.has(e.type))!.type;
          expect(typeOf(ok)).toBe('finished');
          expect(typeOf(bad)).toBe('failed');
          expect(typeOf(retriedThenOk)).toBe('finished');
          expect(typeOf(cancelled)).toBe('cancelled');
          expect(typeOf(upstreamFailed)).toBe('failed');
          const finished = seen.find((e) => e.key === ok.key && e.type === 'finished')!;
          expect(finished.name).toBe(add.taskName);
          const started = seen.find((e) => e.key === ok.key && e.type === 'started');
          expect(started).toBeDefined();
          expect(seen.indexOf(started!)).toBeLessThan(seen.indexOf(finished));
          expect(typeof started!.worker).toBe('string');
          // Inline executors run in the caller; pools name their workers.
          if (caps.inline) expect(started!.worker).toBe('caller');
          else expect(started!.worker).not.toBe('caller');
          expect(seen.find((e) => e.key === bad.key && e.type === 'failed')!.error!.message).toBe(
            'event failure',
          );
        } finally {
          off();
        }
        // After unsubscribing, nothing more arrives.
        const count = seen.length;
        await ex.submit(add, 1, 1);
        expect(seen).toHaveLength(count);
      });
    });
  });

  describe(`${label}: priority`, () => {
    it(
      'starts higher priority first among tasks that become ready together, ties in submission order',
      { timeout: 60_000 },
      async () => {
        // Ready together: all wait on one gated upstream. Run on one worker, so order is defined.
        const single = caps.parallel ? caps.single : make;
        if (!single) throw new Error(`${label}: a parallel executor needs caps.single here`);
        const ex = await single().start();
        try {
          const gate = tempPath('gate');
          const file = tempFile('order');
          const blocker = ex.submit(gated, gate);
          const tasks = [
            ex.submit(low, file, 'low', blocker),
            ex.submit(appendOrder, file, 'tie-1', blocker),
            ex.submit(high, file, 'high', blocker),
            ex.submit(appendOrder, file, 'tie-2', blocker),
            ex.submit(high, file, 'high-2', blocker),
          ];
          open(gate);
          await ex.wait([blocker, tasks]);
          expect(lines(file)).toEqual(['high', 'high-2', 'tie-1', 'tie-2', 'low']);
        } finally {
          await ex.shutdown({ cancelPending: true });
        }
      },
    );

    if (!caps.immediate) {
      it(
        'starts higher priority first among tasks queued behind a busy worker, ties in submission order',
        { timeout: 60_000 },
        async () => {
          const single = caps.parallel ? caps.single : make;
          if (!single) throw new Error(`${label}: a parallel executor needs caps.single here`);
          const ex = await single().start();
          try {
            const gate = tempPath('gate');
            const log = tempFile('blocker');
            const file = tempFile('order');
            // Block the only worker, then submit independent tasks while it is busy.
            const blocker = ex.submit(gated, gate, log);
            await until(() => lines(log).includes('started'), 'the blocker to start');
            const tasks = [
              ex.submit(low, file, 'low'),
              ex.submit(appendOrder, file, 'tie-1'),
              ex.submit(high, file, 'high'),
              ex.submit(appendOrder, file, 'tie-2'),
              ex.submit(high, file, 'high-2'),
            ];
            // Explained before the next microtask: every executor still holds them in its ready queue.
            const queued = await ex.explain(tasks[0]!);
            expect(queued.status).toBe('pending');
            expect(queued.attempts).toEqual([]);
            expect(queued.text).toContain('in the ready queue, at position 5 of 5');
            expect(queued.text).toContain(
              '4 tasks will start before it (2 of priority 5, 2 of priority 0; its own priority is -5)',
            );
            expect(queued.text).toContain(blocker.key);
            if (ex instanceof DistributedExecutor) {
              // Then sent to Redis: it waits in the cluster's queue, behind the busy worker.
              let later: Explanation | undefined;
              const deadline = Date.now() + 15_000;
              while (!(later = await ex.explain(tasks[0]!)).text.includes("cluster's queue")) {
                if (Date.now() > deadline)
                  throw new Error(`not sent to the cluster: ${later.text}`);
                await new Promise((r) => setTimeout(r, 20));
              }
              expect(later.text).toMatch(
                /waits in the cluster's queue tasks \(job .*\): no worker has taken it yet\. 1 live worker can take it/,
              );
            }
            open(gate);
            await ex.wait([blocker, tasks]);
            expect(lines(file)).toEqual(['high', 'high-2', 'tie-1', 'tie-2', 'low']);
          } finally {
            await ex.shutdown({ cancelPending: true });
          }
        },
      );
    }
  });

  describe(`${label}: lifecycle`, () => {
    it('throws ExecutorStateError before start, after shutdown, and on a second start; restarts', async () => {
      const ex = make();
      const before = thrown(() => ex.submit(add, 1, 1));
      expect(before).toBeInstanceOf(ExecutorStateError);
      expect((before as ExecutorStateError).code).toBe('EXECUTOR_STATE');
      expect(() => ex.map(add, [1], [1])).toThrow(ExecutorStateError);
      expect(await ex.start()).toBe(ex);
      await expect(ex.start()).rejects.toBeInstanceOf(ExecutorStateError);
      expect(await ex.submit(add, 1, 1)).toBe(2);
      await ex.shutdown();
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      expect(() => ex.map(add, [1], [1])).toThrow(ExecutorStateError);
      // The same executor may start again.
      await ex.start();
      expect(await ex.submit(add, 2, 2)).toBe(4);
      await ex.shutdown();
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
    });

    it('start(body) returns what body returns and shuts down, also when body throws', async () => {
      const ex = make();
      await expect(
        ex.start(() => {
          throw new Error('body failed');
        }),
      ).rejects.toThrow('body failed');
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      await expect(
        ex.start(async (e) => {
          await e.submit(add, 1, 1);
          throw new Error('async body failed');
        }),
      ).rejects.toThrow('async body failed');
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
      let inside: Executor | undefined;
      expect(
        await ex.start((e) => {
          inside = e;
          return e.submit(add, 3, 4);
        }),
      ).toBe(7);
      expect(inside).toBe(ex);
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
    });

    it('shuts down at the end of an `await using` scope', async () => {
      let leaked: Executor | undefined;
      {
        await using scoped = await make().start();
        expect(await scoped.submit(add, 1, 2)).toBe(3);
        leaked = scoped;
      }
      expect(() => leaked.submit(add, 1, 1)).toThrow(ExecutorStateError);
    });

    it('shutdown waits for every submitted task, queued ones too, and is idempotent', async () => {
      const ex = await make().start();
      const file = tempFile('drain');
      const queued = ex.map(napRecord, Array<string>(6).fill(file), [60, 60, 60, 60, 60, 60]);
      const first = ex.shutdown();
      const second = ex.shutdown();
      expect(second).toBe(first);
      await first;
      expect(queued.map((f) => f.status)).toEqual(Array(6).fill('finished'));
      expect(lines(file).sort()).toEqual(queued.map((f) => f.key).sort());
      // Once shut down, another call has nothing left to do.
      await expect(ex.shutdown()).resolves.toBeUndefined();
      expect(() => ex.submit(add, 1, 1)).toThrow(ExecutorStateError);
    });

    it(
      'shutdown({ cancelPending: true }) cancels queued tasks and aborts running ones',
      { timeout: 60_000 },
      async () => {
        const ex = await make().start();
        const file = tempFile('running');
        const never = tempFile('queued');
        const running = ex.submit(sleepRecord, file, 20_000);
        await until(() => lines(file).includes('started'), 'the task to start');
        const later = ex.map(sleep, [20_000, 20_000, 20_000]);
        const dependent = ex.submit(recordRun, never, running as unknown as Future<number>);
        const started = Date.now();
        await ex.shutdown({ cancelPending: true });
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(await rejection(running)).toBeInstanceOf(TaskCancelledError);
        for (const f of later) {
          expect(await rejection(f)).toBeInstanceOf(TaskCancelledError);
          expect(f.status).toBe('cancelled');
        }
        expect(await rejection(dependent)).toBeInstanceOf(WeftError);
        expect(lines(never)).toEqual([]);
        // The running task's signal fired, and as it stopped within the grace period (default
        // 1000 ms) its worker was not stopped before it had cleaned up.
        await until(() => lines(file).includes('aborted'), 'the abort to reach the task', 5_000);
        await until(() => lines(file).includes('cleaned'), 'the task to clean up', 5_000);
      },
    );
  });

  describe(`${label}: task definitions`, () => {
    it('parses resource tags at definition time and rejects malformed ones, naming the tag', () => {
      const t = task(function tagged() {}, {
        tags: ['resource:GPU=1', 'resource:mem=0.5', 'plain'],
        resources: { disk: 2 },
      });
      expect(t.options.resources).toEqual({ GPU: 1, mem: 0.5, disk: 2 });
      expect(t.options.tags).toContain('plain');
      for (const bad of ['resource:GPU', 'resource:GPU=x', 'resource:GPU=-1', 'resource:=1']) {
        const error = thrown(() => task(function badTag() {}, { tags: [bad] }));
        expect(error).toBeInstanceOf(TaskDefinitionError);
        expect((error as TaskDefinitionError).code).toBe('TASK_DEFINITION');
        expect((error as Error).message).toContain(bad);
      }
    });

    it('rejects what is not a task definition, and two tasks of one name in a module', async () => {
      expect(() => task(42 as never)).toThrow(TaskDefinitionError);
      expect(() => task({ retries: 1 }, 'no function' as never)).toThrow(TaskDefinitionError);
      const optionsFirst = task({ name: 'renamed', retries: 2 }, function original() {});
      expect(optionsFirst.taskName).toBe('renamed');
      expect(optionsFirst.options.retries).toBe(2);
      await expect(import('../fixtures/duplicate-names.js')).rejects.toBeInstanceOf(
        TaskDefinitionError,
      );
    });
  });
}
