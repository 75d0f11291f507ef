// Tasks for W6, the data pipeline (workers import this module by path).
import { task } from '../dist/index.js';

/** `size` bytes, each `fill`. */
export const make = task(function make(size, fill) {
  return new Uint8Array(size).fill(fill);
});

export const length = task(function length(bytes) {
  return bytes.length;
});

export const total = task(function total(lengths) {
  return lengths.reduce((a, b) => a + b, 0);
});
