import { describe, expectTypeOf, it } from 'vitest';
import { LocalExecutor, task, type Future } from 'weft';

const add = task(function add(a: number, b: number): number {
  return a + b;
});
const greet = task(async function greet(name: string): Promise<string> {
  return `hi ${name}`;
});
const ex = new LocalExecutor();

describe('types', () => {
  it('infers results from tasks and plain functions', () => {
    expectTypeOf(ex.submit(add, 1, 2)).toEqualTypeOf<Future<number>>();
    expectTypeOf(ex.submit(greet, 'x')).toEqualTypeOf<Future<string>>();
    expectTypeOf(ex.submit((s: string) => s.length, 'abc')).toEqualTypeOf<Future<number>>();
    expectTypeOf(ex.map(add, [1, 2], [3, 4])).toEqualTypeOf<Future<number>[]>();
  });

  it('checks arguments and accepts futures in their place', () => {
    const f = ex.submit(add, 1, 2);
    ex.submit(add, f, 3);
    // @ts-expect-error a string is not a number
    ex.submit(add, 'one', 2);
    // @ts-expect-error a future of the wrong type
    ex.submit(add, ex.submit(greet, 'x'), 2);
    const sum = task(function sum(xs: number[]): number {
      return xs.length;
    });
    ex.submit(sum, [f, 2, f]);
  });

  it('gives wait the exact resolved shape', async () => {
    const n = ex.submit(add, 1, 2);
    const s = ex.submit(greet, 'x');
    const map = new Map<string, Future<number>>();
    const out = await ex.wait({ n, list: [n, s] as const, nested: { deep: [s] }, map, plain: 5 });
    expectTypeOf(out).toEqualTypeOf<{
      n: number;
      list: readonly [number, string];
      nested: { deep: string[] };
      map: Map<string, Future<number>>;
      plain: number;
    }>();
    expectTypeOf(await ex.wait([n, s] as [Future<number>, Future<string>])).toEqualTypeOf<
      [number, string]
    >();
  });
});
