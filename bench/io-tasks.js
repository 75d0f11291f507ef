// W5 (I/O-bound) tasks for every runner: weft imports the tasks, piscina and tinypool the plain
// exports (bench/anchors/io-worker.js), the raw BullMQ worker the plain functions. Each wait is
// the same code wherever it runs.
import http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { threadId } from 'node:worker_threads';
import { task } from '../dist/index.js';

// One keep-alive agent per worker, as a real crawler would use, with no cap on sockets.
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/** Waits `ms` on a timer. */
export function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms, null));
}

/** One GET against `url` (the bench's server answers after 20 ms): the body's length. */
export function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let length = 0;
        res.on('data', (chunk) => (length += chunk.length));
        res.on('end', () => resolve(length));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

let gc;
/** A full GC in this worker (pool workers are not started with --expose-gc). */
function collect() {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc');
  }
  gc();
}

/**
 * Collects garbage, waits `ms`, then reports this worker's heap and RSS: with every task of a round waiting at
 * once, the largest figure per worker is its peak while that many tasks are in flight.
 */
export async function waitAndMeasure(ms) {
  collect();
  await wait(ms);
  const { heapUsed, rss } = process.memoryUsage();
  return { worker: `${process.pid}/${threadId}`, heapUsed, rss };
}

export const sleepTask = task(function sleepTask(ms) {
  return wait(ms);
});

export const getTask = task(function getTask(url) {
  return get(url);
});

export const memTask = task(function memTask(ms) {
  return waitAndMeasure(ms);
});
