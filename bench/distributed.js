// Distributed rows of the benchmark: weft's DistributedExecutor on a local cluster (2 worker
// processes) against raw BullMQ (Queue + Worker + QueueEvents, 2 worker processes) in the same run.
import { fork } from 'node:child_process';
import { Queue, QueueEvents } from 'bullmq';
import { DistributedExecutor } from '../dist/index.js';
import { startRedisServer } from '../dist/distributed/redis-server.js';
import { bytesTask, cpu, noop } from './cluster-tasks.js';

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs the wanted workloads on both; returns rows { runner, w1, w2p50, w2p99, w3, w4 }.
 * `iterations` is the W3 task size (see work.js), `serialW3Ms` the serial time of 64 of them.
 */
export async function benchDistributed({
  quick = false,
  serialW3Ms,
  iterations,
  want = () => true,
}) {
  const rounds = quick ? 1 : 3;
  const n1 = quick ? 2000 : 10000;
  const n2 = quick ? 200 : 1000;
  const payload = new Uint8Array(1024 * 1024).fill(7);
  const rows = [];

  // ---- weft ---------------------------------------------------------------------------------
  {
    const ex = await new DistributedExecutor({ workers: 2, localProcesses: true }).start();
    await ex.wait(
      ex.map(
        noop,
        Array.from({ length: 200 }, () => 0),
      ),
    );
    await ex.wait(ex.map(cpu, Array(4).fill(Math.round(iterations / 5))));
    const w1 = [];
    for (let r = 0; r < (want('w1') ? rounds : 0); r++) {
      const t = performance.now();
      await ex.wait(
        ex.map(
          noop,
          Array.from({ length: n1 }, () => 0),
        ),
      );
      w1.push(n1 / ((performance.now() - t) / 1000));
    }
    const lat = [];
    for (let i = 0; i < (want('w2') ? n2 : 0); i++) {
      const t = performance.now();
      await ex.submit(noop, 0);
      lat.push((performance.now() - t) * 1000);
    }
    lat.sort((a, b) => a - b);
    let w3;
    if (want('w3')) {
      const t = performance.now();
      await ex.wait(ex.map(cpu, Array(64).fill(iterations)));
      w3 = serialW3Ms / (performance.now() - t);
    }
    const n4 = quick ? 50 : 200;
    let w4;
    if (want('w4')) {
      // Distinct arrays: one serialization would otherwise store a shared array once.
      const arrays = Array.from({ length: n4 }, () => new Uint8Array(1024 * 1024).fill(7));
      const t = performance.now();
      await ex.wait(ex.map(bytesTask, arrays));
      w4 = n4 / ((performance.now() - t) / 1000);
    }
    await ex.shutdown();
    rows.push({
      runner: 'weft distributed (local cluster, 2 worker processes)',
      w1: w1.length ? median(w1) : undefined,
      w2p50: lat.length ? percentile(lat, 0.5) : undefined,
      w2p99: lat.length ? percentile(lat, 0.99) : undefined,
      w3,
      w4,
    });
  }

  // ---- raw BullMQ ---------------------------------------------------------------------------
  {
    const redis = await startRedisServer();
    const url = new URL(redis.address);
    const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
    const workers = [];
    const start = (concurrency) =>
      Promise.all(
        [0, 1].map(
          () =>
            new Promise((resolve) => {
              const child = fork(
                new URL('./anchors/bullmq-worker.js', import.meta.url),
                [redis.address, String(concurrency)],
                { stdio: 'inherit' },
              );
              workers.push(child);
              child.once('message', resolve);
            }),
        ),
      );
    const stop = () => {
      for (const w of workers.splice(0)) w.kill();
    };
    const queue = new Queue('anchor', {
      connection,
      prefix: 'anchor',
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });
    const events = new QueueEvents('anchor', { connection, prefix: 'anchor' });
    await events.waitUntilReady();
    let completed = 0;
    let wake;
    events.on('completed', () => {
      completed++;
      wake?.();
    });
    const runBulk = async (jobs) => {
      completed = 0;
      const done = new Promise((resolve) => {
        wake = () => completed >= jobs.length && resolve();
      });
      await queue.addBulk(jobs);
      await done;
    };
    await start(50); // concurrency 50: the setting the research measured as BullMQ's best for no-ops
    await runBulk(Array.from({ length: 200 }, () => ({ name: 'noop', data: {} })));
    const w1 = [];
    for (let r = 0; r < (want('w1') ? rounds : 0); r++) {
      const t = performance.now();
      await runBulk(Array.from({ length: n1 }, () => ({ name: 'noop', data: {} })));
      w1.push(n1 / ((performance.now() - t) / 1000));
    }
    const lat = [];
    for (let i = 0; i < (want('w2') ? n2 : 0); i++) {
      const t = performance.now();
      const job = await queue.add('noop', {}, { removeOnComplete: { age: 60 } }); // waitUntilFinished needs the job kept (bullmq#85)
      await job.waitUntilFinished(events);
      lat.push((performance.now() - t) * 1000);
    }
    lat.sort((a, b) => a - b);
    stop();
    await start(1); // CPU-bound work: one job per worker process at a time
    await runBulk(
      Array.from({ length: 4 }, () => ({
        name: 'cpu',
        data: { iterations: Math.round(iterations / 5) },
      })),
    );
    let w3;
    if (want('w3')) {
      const t = performance.now();
      await runBulk(Array.from({ length: 64 }, () => ({ name: 'cpu', data: { iterations } })));
      w3 = serialW3Ms / (performance.now() - t);
    }
    const n4 = quick ? 50 : 200;
    let w4;
    if (want('w4')) {
      const asJson = Buffer.from(payload);
      const t = performance.now();
      await runBulk(Array.from({ length: n4 }, () => ({ name: 'bytes', data: { bytes: asJson } })));
      w4 = n4 / ((performance.now() - t) / 1000);
    }
    stop();
    await events.close();
    await queue.close();
    await redis.stop();
    rows.push({
      runner: 'raw BullMQ (2 worker processes; concurrency 50 for W1/W2, 1 for W3/W4)',
      w1: w1.length ? median(w1) : undefined,
      w2p50: lat.length ? percentile(lat, 0.5) : undefined,
      w2p99: lat.length ? percentile(lat, 0.99) : undefined,
      w3,
      w4,
    });
  }
  return rows;
}
