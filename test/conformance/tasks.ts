/**
 * Tasks the conformance suite runs on every executor. Defined with task() at the top level, so
 * pool and cluster workers load this module and find them by name.
 */
import { appendFileSync } from 'node:fs';
import { task, taskContext } from 'weft';

export const add = task(function add(a: number, b: number): number {
  return a + b;
});

export const double = task(function double(x: number): number {
  return 2 * x;
});

export const sum = task(function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
});

export const echo = task(function echo<T>(value: T): T {
  return value;
});

export const shape = task(function shape(input: {
  a: number;
  list: number[];
  nested: { b: number };
}): number {
  return input.a + input.list.reduce((x, y) => x + y, 0) + input.nested.b;
});

/** Appends the key of each run to `file`: the file's lines count runs. */
export const recordRun = task(function recordRun(file: string, value: number): number {
  appendFileSync(file, `${taskContext().key}\n`);
  return value;
});

export class CustomError extends Error {
  override name = 'CustomError';
  code = 'E_CUSTOM';
  detail = { why: 'because' };
}

export const failCustom = task(function failCustom(message: string): never {
  throw new CustomError(message, { cause: new RangeError('root cause') });
});

export const failPlain = task(function failPlain(message: string): never {
  throw new Error(message);
});

export const throwValue = task(function throwValue(): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the behaviour under test
  throw { reason: 'not an error', n: 42 };
});

export const context = task(function context(): { attempt: number; key: string; aborted: boolean } {
  const { attempt, key, signal } = taskContext();
  return { attempt, key, aborted: signal.aborted };
});

/** Fails on its first two attempts, then reports its attempt and key. */
export const flaky = task(
  function flaky(): { attempt: number; key: string } {
    const { attempt, key } = taskContext();
    if (attempt < 3) throw new Error(`attempt ${attempt} fails`);
    return { attempt, key };
  },
  { retries: 2, retryDelayMs: 50 },
);

/** Always fails; one retry. */
export const alwaysFails = task(
  function alwaysFails(): never {
    throw new Error(`attempt ${taskContext().attempt} failed`);
  },
  { retries: 1 },
);

/** Waits (without blocking) until its signal aborts or `ms` passes. */
export const sleep = task(async function sleep(ms: number): Promise<string> {
  const { signal } = taskContext();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => resolve('slept'), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });
});

export const slowWithTimeout = task(
  async function slowWithTimeout(): Promise<string> {
    const { signal } = taskContext();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => resolve('too late'), 10_000);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      });
    });
  },
  { timeoutMs: 300 },
);

/** Busy for `ms` of CPU; returns [start, end] in epoch ms. */
export const burn = task(function burn(ms: number): [number, number] {
  const start = Date.now();
  let x = 0;
  while (Date.now() - start < ms) x += Math.sqrt(x + 1);
  return [start, Date.now()];
});

export const appendOrder = task(function appendOrder(file: string, label: string): string {
  appendFileSync(file, `${label}\n`);
  return label;
});

export const low = task(
  function low(file: string, label: string): string {
    appendFileSync(file, `${label}\n`);
    return label;
  },
  { priority: -5 },
);

export const high = task(
  function high(file: string, label: string): string {
    appendFileSync(file, `${label}\n`);
    return label;
  },
  { priority: 5 },
);

/** Like sleep, and appends 'aborted' to `file` when its signal fires. */
export const sleepRecord = task(async function sleepRecord(
  file: string,
  ms: number,
): Promise<string> {
  const { signal } = taskContext();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => resolve('slept'), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      appendFileSync(file, 'aborted\n');
      reject(signal.reason as Error);
    });
  });
});
