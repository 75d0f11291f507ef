/**
 * Tasks the dashboard tests run, defined with task() at the top level so pool and cluster
 * workers load this module and find them by name. They burn real CPU time, so a worker is
 * visibly busy, and each has its own name, so the task stream shows several colours. The
 * functions are named apart from their constants: a bundler renames a function expression that
 * shadows its constant (`const a = task(function a ...)` becomes `a2`), and the page shows names.
 */
import { task } from 'weftjs';

/** Keeps the thread busy for about `ms` milliseconds. */
function spin(ms: number): number {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

export const resize = task(function resizeImage(ms: number): number {
  spin(ms);
  return ms;
});

export const thumbnail = task(function makeThumbnail(ms: number): number {
  spin(ms);
  return ms;
});

export const checksum = task(function computeChecksum(a: number, b: number): number {
  spin(5);
  return a + b;
});

/** Fails with `message` after `ms` of work; its stack names `uploadResult`. */
export const upload = task(function uploadResult(message: string, ms = 0): never {
  spin(ms);
  throw new Error(message);
});
