/**
 * `wait`, `asCompleted`, `unmapped` and the argument zipping behind `map`.
 */
import { ConfigurationError, TaskDefinitionError } from './errors.js';
import type { Future, Resolved, Unmapped } from './types.js';
import { collectFutures, substituteFutures, type FutureLike } from './values.js';

const unmappedSymbol = Symbol.for('weft.unmapped');

/**
 * Marks a `map` argument to be passed whole to every call instead of being iterated.
 * @example executor.map(resize, paths, unmapped({ width: 640 }))
 */
export function unmapped<T>(value: T): Unmapped<T> {
  return Object.freeze({ value, [unmappedSymbol]: true }) as unknown as Unmapped<T>;
}

function isUnmapped(value: unknown): value is Unmapped<unknown> {
  return typeof value === 'object' && value !== null && unmappedSymbol in value;
}

/** Zips `map`'s iterables into one argument list per call; throws on unequal lengths. */
export function zipMapArguments(fnName: string, iterables: unknown[]): unknown[][] {
  const columns: (unknown[] | Unmapped<unknown>)[] = iterables.map((item, i) => {
    if (isUnmapped(item)) return item;
    if (
      item === null ||
      item === undefined ||
      typeof (item as Iterable<unknown>)[Symbol.iterator] !== 'function' ||
      typeof item === 'string'
    ) {
      throw new TaskDefinitionError(
        `map(${fnName}, ...): argument ${i + 1} is ${item === null ? 'null' : typeof item === 'string' ? 'a string' : typeof item}, not an iterable. Pass an array (or any iterable) per parameter, or wrap a value that every call should get in unmapped(value).`,
      );
    }
    return Array.from(item as Iterable<unknown>);
  });
  const lengths = columns.filter((c): c is unknown[] => Array.isArray(c)).map((c) => c.length);
  if (lengths.length === 0) return [];
  const n = lengths[0]!;
  if (lengths.some((l) => l !== n)) {
    throw new TaskDefinitionError(
      `map(${fnName}, ...) got iterables of different lengths (${lengths.join(', ')}); map pairs them index by index, so they must be equally long. Trim them, or pass a value every call needs as unmapped(value).`,
    );
  }
  const calls: unknown[][] = new Array<unknown[]>(n);
  for (let i = 0; i < n; i++) {
    calls[i] = columns.map((c) => (Array.isArray(c) ? c[i] : c.value));
  }
  return calls;
}

/**
 * Resolves every future inside `value` (arrays, tuples and plain objects, at any depth) and
 * returns the same shape holding values. Other values come back as they are. Rejects with the
 * error of the first task that fails.
 */
export async function waitFor<T>(value: T): Promise<Resolved<T>> {
  const found = new Set<FutureLike>();
  if (!collectFutures(value, found)) return value as Resolved<T>;
  const futures = [...found];
  const values = await Promise.all(futures.map((f) => f as unknown as PromiseLike<unknown>));
  const byFuture = new Map<FutureLike, unknown>();
  futures.forEach((f, i) => byFuture.set(f, values[i]));
  return substituteFutures(value, (f) => byFuture.get(f)) as Resolved<T>;
}

/**
 * Yields the given futures, the very same objects, in the order they complete (failed and
 * cancelled ones included). The iterator never awaits a future's value, so a failed future does
 * not end the loop: await it (or call `result()`) to get its value or error.
 */
export function asCompleted<T>(futures: Iterable<Future<T>>): AsyncIterable<Future<T>> {
  if (futures === null || futures === undefined || typeof futures[Symbol.iterator] !== 'function') {
    throw new ConfigurationError(
      `asCompleted() needs an iterable of futures, got ${String(futures)}.`,
    );
  }
  const all = [...futures];
  return {
    [Symbol.asyncIterator](): AsyncIterator<Future<T>> {
      const done: Future<T>[] = [];
      let wake: (() => void) | undefined;
      for (const future of all) {
        const mark = (): void => {
          done.push(future);
          wake?.();
        };
        future.then(mark, mark);
      }
      let yielded = 0;
      return {
        async next(): Promise<IteratorResult<Future<T>>> {
          if (yielded >= all.length) return { done: true, value: undefined };
          while (done.length === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
          yielded++;
          // Wrapped in an iterator result, the future is not awaited by the caller's for-await.
          return { done: false, value: done.shift()! };
        },
        return(): Promise<IteratorResult<Future<T>>> {
          yielded = all.length;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}
