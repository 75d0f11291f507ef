// Tasks for the distributed rows of the benchmark (workers import this module by path).
import { task } from '../dist/index.js';

export const noop = task(function noop() {
  return null;
});

/** About `ms` of CPU work, the same loop as the raw BullMQ anchor. */
export const cpu = task(function cpu(ms) {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
});

export const bytesTask = task(function bytesTask(bytes) {
  return bytes.length;
});
