/**
 * Tasks for the trust tests: each leaves a side effect (a file) that proves it ran.
 */
import { appendFileSync } from 'node:fs';
import { task } from 'weftjs';

/** Appends a line to `path` and returns it: the file exists only if the task ran. */
export const touch = task(function touch(path: string): string {
  appendFileSync(path, `ran in ${process.pid}\n`);
  return path;
});

export const double = task(function double(n: number): number {
  return n * 2;
});
