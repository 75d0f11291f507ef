/**
 * Type tests (vitest typecheck): submit and map infer from the task, arguments are checked and may
 * be futures, and wait returns the exact resolved shape.
 */
import { describe, expectTypeOf, it } from 'vitest';
import {
  LocalExecutor,
  LocalPoolExecutor,
  task,
  unmapped,
  type Executor,
  type Future,
  type FutureStatus,
  type Resolved,
  type Task,
  type DashboardOption,
  type DashboardSettings,
  type DistributedExecutorOptions,
  type LocalExecutorOptions,
  type LocalPoolExecutorOptions,
  type PoolResourceLimits,
  type ProgressOptions,
} from 'weftjs';

const add = task(function add(a: number, b: number): number {
  return a + b;
});
const greet = task(async function greet(name: string): Promise<string> {
  return `hi ${name}`;
});
const options = task({ retries: 1 }, function withOptions(flag: boolean): { ok: boolean } {
  return { ok: flag };
});
const ex: Executor = new LocalExecutor();
const pool = new LocalPoolExecutor({ scheduler: 'threads' });

describe('types', () => {
  it('keeps a task callable like its function', () => {
    expectTypeOf(add).toMatchTypeOf<Task<(a: number, b: number) => number>>();
    expectTypeOf(add(1, 2)).toEqualTypeOf<number>();
    expectTypeOf(greet('x')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(add.taskName).toEqualTypeOf<string>();
    expectTypeOf(add.options.retries).toEqualTypeOf<number>();
  });

  it('infers results from tasks and plain functions, unwrapping promises', () => {
    expectTypeOf(ex.submit(add, 1, 2)).toEqualTypeOf<Future<number>>();
    expectTypeOf(ex.submit(greet, 'x')).toEqualTypeOf<Future<string>>();
    expectTypeOf(ex.submit(options, true)).toEqualTypeOf<Future<{ ok: boolean }>>();
    expectTypeOf(ex.submit((s: string) => s.length, 'abc')).toEqualTypeOf<Future<number>>();
    expectTypeOf(ex.submit(async () => [1, 2] as const)).toEqualTypeOf<Future<readonly [1, 2]>>();
    expectTypeOf(pool.submit(add, 1, 2)).toEqualTypeOf<Future<number>>();
    expectTypeOf(ex.map(add, [1, 2], [3, 4])).toEqualTypeOf<Future<number>[]>();
    expectTypeOf(ex.map(greet, new Set(['a']))).toEqualTypeOf<Future<string>[]>();
  });

  it('gives futures their members', () => {
    const f = ex.submit(add, 1, 2);
    expectTypeOf(f.key).toEqualTypeOf<string>();
    expectTypeOf(f.status).toEqualTypeOf<FutureStatus>();
    expectTypeOf(f.result()).toEqualTypeOf<Promise<number>>();
    expectTypeOf(f.cancel()).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(f).toMatchTypeOf<PromiseLike<number>>();
  });

  it('checks arguments and accepts futures in their place', () => {
    const f = ex.submit(add, 1, 2);
    const s = ex.submit(greet, 'x');
    ex.submit(add, f, 3);
    ex.submit(greet, s);
    // @ts-expect-error a string is not a number
    ex.submit(add, 'one', 2);
    // @ts-expect-error a future of the wrong type
    ex.submit(add, s, 2);
    // @ts-expect-error too few arguments
    ex.submit(add, 1);
    // @ts-expect-error too many arguments
    ex.submit(add, 1, 2, 3);
    // @ts-expect-error plain functions are checked too
    ex.submit((n: number) => n * 2, 'two');
    const sum = task(function sum(xs: number[]): number {
      return xs.length;
    });
    ex.submit(sum, [f, 2, f]);
    // @ts-expect-error a future of a string inside a number array
    ex.submit(sum, [f, s]);
    const shape = task(function shape(o: { a: number; list: string[] }): number {
      return o.a + o.list.length;
    });
    ex.submit(shape, { a: f, list: [s, 'x'] });
    // @ts-expect-error wrong type nested in an object
    ex.submit(shape, { a: s, list: [] });
  });

  it('checks map arguments: iterables of arguments, futures as elements, unmapped values', () => {
    const f = ex.submit(add, 1, 2);
    ex.map(add, [1, f], unmapped(10));
    ex.map(add, [1, 2], unmapped(f));
    // @ts-expect-error strings where numbers go
    ex.map(add, ['a'], [1]);
    // @ts-expect-error a bare value where an iterable goes
    ex.map(add, 1, [1]);
  });

  it('gives wait the exact resolved shape', async () => {
    const n = ex.submit(add, 1, 2);
    const s = ex.submit(greet, 'x');
    const map = new Map<string, Future<number>>();
    const date = new Date();
    const set = new Set<Future<string>>();
    const out = await ex.wait({
      n,
      list: [n, s] as const,
      nested: { deep: [s], deeper: { n } },
      map,
      date,
      set,
      plain: 5,
    });
    expectTypeOf(out).toEqualTypeOf<{
      n: number;
      list: readonly [number, string];
      nested: { deep: string[]; deeper: { n: number } };
      map: Map<string, Future<number>>;
      date: Date;
      set: Set<Future<string>>;
      plain: number;
    }>();
    expectTypeOf(await ex.wait([n, s] as [Future<number>, Future<string>])).toEqualTypeOf<
      [number, string]
    >();
    expectTypeOf(await ex.wait([n, n])).toEqualTypeOf<number[]>();
    expectTypeOf(await ex.wait(ex.map(add, [1], [2]))).toEqualTypeOf<number[]>();
    expectTypeOf(await ex.wait(n)).toEqualTypeOf<number>();
    expectTypeOf(await ex.wait('x')).toEqualTypeOf<string>();
    expectTypeOf<Resolved<{ a: [Future<boolean>, Map<number, Future<1>>] }>>().toEqualTypeOf<{
      a: [boolean, Map<number, Future<1>>];
    }>();
  });
  it('gives Future catch() and finally() like a Promise', () => {
    const n = ex.submit(add, 1, 2);
    expectTypeOf(n.catch(() => 'fallback')).toEqualTypeOf<Promise<number | string>>();
    expectTypeOf(n.catch()).toEqualTypeOf<Promise<number>>();
    expectTypeOf(n.catch((error) => error)).toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(n.finally(() => undefined)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(n.then((v) => String(v))).toEqualTypeOf<Promise<string>>();
    expectTypeOf(ex.submit(greet, 'x').catch(async () => 0)).toEqualTypeOf<
      Promise<string | number>
    >();
  });

  it('exports every options type', () => {
    expectTypeOf<LocalExecutorOptions['concurrency']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<LocalPoolExecutorOptions['concurrency']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<DistributedExecutorOptions['concurrency']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<DashboardOption>().toEqualTypeOf<boolean | DashboardSettings>();
    expectTypeOf<DashboardSettings>().toEqualTypeOf<{ port?: number; host?: string }>();
    expectTypeOf<ProgressOptions['label']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<PoolResourceLimits['stackSizeMb']>().toEqualTypeOf<number | undefined>();
  });
});
