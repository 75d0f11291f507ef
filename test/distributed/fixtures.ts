/**
 * Tasks for the cluster tests. Workers load this module (through tsx) and find tasks by name.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { task, taskContext } from 'weftjs';

export const add = task(function add(a: number, b: number): number {
  return a + b;
});

/** Busy for `ms`, then returns which worker process ran it. */
export const spin = task(function spin(ms: number): number {
  const end = Date.now() + ms;
  while (Date.now() < end);
  return process.pid;
});

/** Records its run interval (start, end, pid) in `file`, holding a GPU. */
export const gpuJob = task(
  function gpuJob(file: string, ms: number): number {
    const start = Date.now();
    const end = start + ms;
    while (Date.now() < end);
    appendFileSync(file, `${start} ${Date.now()} ${process.pid}\n`);
    return process.pid;
  },
  { tags: ['resource:GPU=1'] },
);

/** Kills the worker process that runs it, every time. */
export const poison = task(function poison(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
});

/** Waits until aborted; reports the abort reason's name. */
export const waitForAbort = task(async function waitForAbort(): Promise<string> {
  const { signal } = taskContext();
  return new Promise((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error));
  });
});

/** Sleeps without blocking, for Redis-restart tests. */
export const nap = task(async function nap(ms: number, value: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return value;
});

/** `size` bytes, each `fill`: a big value for the data tests. */
export const bytes = task(function bytes(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
});

/** A copy of `input` with every byte one higher. */
export const bump = task(function bump(input: Uint8Array): Uint8Array {
  return input.map((b) => b + 1);
});

/** The length of `input` and its first byte, plus `extra`. */
export const summary = task(function summary(input: Uint8Array, extra = 0): number[] {
  return [input.length, input[0] ?? -1, extra];
});

/**
 * Side effects to count: creates `start-<i>.<pid>` in `dir` when it starts and `done-<i>.<pid>` when it ends
 * after `ms`, unless its abort signal fired first.
 */
export const mark = task(async function mark(dir: string, i: number, ms: number): Promise<number> {
  const { signal } = taskContext();
  writeFileSync(join(dir, `start-${i}.${process.pid}`), '');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (!signal.aborted) writeFileSync(join(dir, `done-${i}.${process.pid}`), '');
  return i;
});
