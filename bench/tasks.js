// Tasks for the local rows of the benchmark (pool workers import this module by path).
import { task } from '../dist/index.js';
import { cpuWork } from './work.js';

export const noop = task(function noop() {
  return null;
});

export const cpu = task(function cpu(ms) {
  return cpuWork(ms);
});

export const bytes = task(function bytes(data) {
  return data.length;
});
