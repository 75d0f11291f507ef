// Tasks for the distributed rows of the benchmark (workers import this module by path).
import { task } from '../dist/index.js';
import { spin } from './work.js';

export const noop = task(function noop() {
  return null;
});

/** W3: `iterations` of the shared CPU loop (see work.js), as the raw BullMQ anchor runs it. */
export const cpu = task(function cpu(iterations) {
  return spin(iterations);
});

export const bytesTask = task(function bytesTask(bytes) {
  return bytes.length;
});
