// Tasks for the local rows of the benchmark (pool workers import this module by path).
import { task } from '../dist/index.js';
import { spin } from './work.js';

export const noop = task(function noop() {
  return null;
});

/** W3: `iterations` of the shared CPU loop (see work.js). */
export const cpu = task(function cpu(iterations) {
  return spin(iterations);
});

export const bytes = task(function bytes(data) {
  return data.length;
});

/** Holds its worker until the main thread stores a non-zero value in `shared[0]`. */
export const block = task(function block(shared) {
  Atomics.wait(new Int32Array(shared), 0, 0);
  return null;
});
