// npm run bench [-- --quick] [-- --only w1,w2] [-- --no-distributed]
//
// One process run: the same workloads on weft's executors and, as anchors, directly on piscina,
// tinypool and workerpool (and raw BullMQ for the cluster), then a markdown table with ratios.
//   W1  10,000 no-op tasks submitted, then all awaited: tasks/s (median of rounds)
//   W2  1,000 sequential submit-then-await round trips of a no-op: p50 and p99 in µs
//   W3  64 tasks of ~25 ms CPU each: speedup over running them serially in the main thread
//   W4  200 tasks each given its own 1 MiB Uint8Array, returning its length: MiB/s
// Plus LocalExecutor's submit overhead, the heap cost of 100,000 pending futures, and the cost
// of the event stream (W1 on threads with and without a listener).
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import workerpool from 'workerpool';
import { LocalExecutor, LocalPoolExecutor } from '../dist/index.js';
import { benchDistributed } from './distributed.js';
import { bytes, cpu, noop } from './tasks.js';
import { cpuWork } from './work.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = (
  args.find((a) => a.startsWith('--only'))?.split('=')[1] ??
  args[args.indexOf('--only') + 1] ??
  ''
)
  .split(',')
  .filter((w) => /^w\d$/.test(w));
const want = (w) => only.length === 0 || only.includes(w);
const workers = 2;
const N1 = quick ? 2_000 : 10_000;
const N2 = quick ? 200 : 1_000;
const N4 = quick ? 50 : 200;
const ROUNDS = quick ? 1 : 3;

const anchorFile = fileURLToPath(new URL('./anchors/piscina-worker.js', import.meta.url));
const workerpoolFile = fileURLToPath(new URL('./anchors/workerpool-worker.js', import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const payloads = Array.from({ length: N4 }, (_, i) => new Uint8Array(1024 * 1024).fill(i & 255));

/**
 * Every runner stays up for the whole run and each workload is measured runner after runner, W2
 * in interleaved blocks: on this machine an idle worker's wake-up latency drifts by 3x within
 * seconds, so measuring one runner long after another would compare the machine, not the pools.
 */
async function measureAll(runners) {
  for (const r of runners) {
    r.row = { runner: r.label, kind: r.kind };
    await Promise.all(Array.from({ length: 200 }, () => r.call('noop')));
    await Promise.all(Array.from({ length: 4 }, () => r.call('cpu', 5)));
  }
  if (want('w1')) {
    for (const r of runners) {
      const rates = [];
      for (let round = 0; round < ROUNDS; round++) {
        const t = performance.now();
        const pending = new Array(N1);
        for (let i = 0; i < N1; i++) pending[i] = r.call('noop');
        await Promise.all(pending);
        rates.push(N1 / ((performance.now() - t) / 1000));
      }
      r.row.w1 = median(rates);
    }
    process.stderr.write('  W1 done\n');
  }
  if (want('w2')) {
    const samples = new Map(runners.map((r) => [r, []]));
    const block = 50;
    for (let done = 0; done < N2; done += block) {
      for (const r of runners) {
        const lat = samples.get(r);
        for (let i = 0; i < block; i++) {
          const t = performance.now();
          await r.call('noop');
          lat.push((performance.now() - t) * 1000);
        }
      }
    }
    for (const r of runners) {
      const lat = samples.get(r).sort((a, b) => a - b);
      r.row.w2p50 = percentile(lat, 0.5);
      r.row.w2p99 = percentile(lat, 0.99);
    }
    process.stderr.write('  W2 done\n');
  }
  if (want('w3')) {
    for (const r of runners) {
      const t = performance.now();
      await Promise.all(Array.from({ length: 64 }, () => r.call('cpu', 25)));
      r.row.w3ms = performance.now() - t;
    }
    process.stderr.write('  W3 done\n');
  }
  if (want('w4')) {
    for (const r of runners) {
      const t = performance.now();
      await Promise.all(payloads.map((p) => r.call('bytes', p)));
      r.row.w4 = N4 / ((performance.now() - t) / 1000);
    }
    process.stderr.write('  W4 done\n');
  }
  for (const r of runners) await r.close();
  return runners.map((r) => r.row);
}

async function weftRunner(label, kind, executor) {
  await executor.start();
  const byName = { noop, cpu, bytes };
  return {
    label,
    kind,
    call: (name, arg) =>
      arg === undefined ? executor.submit(byName[name]) : executor.submit(byName[name], arg),
    close: () => executor.shutdown(),
  };
}

async function main() {
  const serialStart = performance.now();
  for (let i = 0; i < 64; i++) cpuWork(25);
  const serialW3Ms = performance.now() - serialStart;

  const runners = [
    await weftRunner('weft LocalExecutor', 'caller', new LocalExecutor()),
    await weftRunner(
      'weft synchronous',
      'caller',
      new LocalPoolExecutor({ scheduler: 'synchronous' }),
    ),
    await weftRunner(
      'weft threads',
      'threads',
      new LocalPoolExecutor({ scheduler: 'threads', workers }),
    ),
    await weftRunner(
      'weft processes',
      'processes',
      new LocalPoolExecutor({ scheduler: 'processes', workers }),
    ),
  ];
  {
    const pool = new Piscina({ filename: anchorFile, minThreads: workers, maxThreads: workers });
    runners.push({
      label: 'piscina 5 (threads)',
      kind: 'threads',
      call: (name, arg) => pool.run(arg, { name }),
      close: () => pool.destroy(),
    });
  }
  {
    const pool = new Tinypool({
      filename: anchorFile,
      runtime: 'worker_threads',
      minThreads: workers,
      maxThreads: workers,
    });
    runners.push({
      label: 'tinypool 2 (worker_threads)',
      kind: 'threads',
      call: (name, arg) => pool.run(arg, { name }),
      close: () => pool.destroy(),
    });
  }
  {
    const pool = new Tinypool({
      filename: anchorFile,
      runtime: 'child_process',
      serialization: 'advanced',
      minThreads: workers,
      maxThreads: workers,
    });
    runners.push({
      label: 'tinypool 2 (child_process, advanced)',
      kind: 'processes',
      call: (name, arg) => pool.run(arg, { name }),
      close: () => pool.destroy(),
    });
  }
  {
    const pool = workerpool.pool(workerpoolFile, {
      minWorkers: workers,
      maxWorkers: workers,
      workerType: 'thread',
    });
    runners.push({
      label: 'workerpool 10 (thread)',
      kind: 'threads',
      call: (name, arg) => pool.exec(name, arg === undefined ? [] : [arg]),
      close: () => pool.terminate(),
    });
  }
  {
    const pool = workerpool.pool(workerpoolFile, {
      minWorkers: workers,
      maxWorkers: workers,
      workerType: 'process',
    });
    runners.push({
      label: 'workerpool 10 (process)',
      kind: 'processes',
      call: (name, arg) => pool.exec(name, arg === undefined ? [] : [arg]),
      close: () => pool.terminate(),
    });
  }
  const rows = await measureAll(runners);
  for (const row of rows) if (row.w3ms) row.w3 = serialW3Ms / row.w3ms;

  if (!args.includes('--no-distributed')) {
    for (const row of await benchDistributed({ quick, serialW3Ms }))
      rows.push({ ...row, kind: 'cluster' });
  }

  const extras = await extraFigures();
  const table = render(rows, extras, serialW3Ms);
  process.stdout.write(`${table}\n`);
  if (!quick && only.length === 0)
    writeFileSync(new URL('./results.md', import.meta.url), `${table}\n`);
}

/** LocalExecutor submit overhead, heap per pending future, event-stream cost. */
async function extraFigures() {
  const out = {};
  {
    const ex = await new LocalExecutor().start();
    const fn = noop;
    for (let i = 0; i < 20_000; i++) ex.submit(fn);
    const n = 100_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) ex.submit(fn);
    out.submitUs = ((performance.now() - t) * 1000) / n;
    await ex.shutdown();
  }
  if (globalThis.gc) {
    const ex = await new LocalPoolExecutor({ scheduler: 'threads', workers: 1 }).start();
    const blocker = ex.submit(cpu, 3_000);
    await new Promise((r) => setTimeout(r, 100));
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    const futures = new Array(100_000);
    for (let i = 0; i < futures.length; i++) futures[i] = ex.submit(noop);
    globalThis.gc();
    out.heapMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    await blocker;
    await ex.wait(futures);
    await ex.shutdown();
  }
  {
    const ex = await new LocalPoolExecutor({ scheduler: 'threads', workers }).start();
    const w1 = async () => {
      const rates = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        const fs = new Array(N1);
        for (let i = 0; i < N1; i++) fs[i] = ex.submit(noop);
        await ex.wait(fs);
        rates.push(N1 / ((performance.now() - t) / 1000));
      }
      return median(rates);
    };
    await w1();
    out.eventsOff = await w1();
    const off = ex.events.on('*', () => {});
    out.eventsOn = await w1();
    off();
    out.eventsOffAgain = await w1();
    await ex.shutdown();
  }
  return out;
}

function render(rows, extras, serialW3Ms) {
  const best = (kind, key, higher) => {
    const anchors = rows.filter(
      (r) => r.kind === kind && !r.runner.startsWith('weft') && r[key] !== undefined,
    );
    if (anchors.length === 0) return undefined;
    return anchors.reduce((a, b) => (higher ? (b[key] > a[key] ? b : a) : b[key] < a[key] ? b : a))[
      key
    ];
  };
  const fmt = (v, digits = 0) =>
    v === undefined
      ? '–'
      : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const ratio = (row, key, higher) => {
    if (!row.runner.startsWith('weft') || row[key] === undefined) return '';
    const b = best(row.kind, key, higher);
    if (b === undefined) return '';
    return ` (${(higher ? row[key] / b : b / row[key]).toFixed(2)}x)`;
  };
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${workers} workers each${quick ? ' (quick run)' : ''}. Ratios compare each weft row with the best anchor of its kind in this run (higher is better for weft; for W2 it is anchor latency / weft latency). Serial W3 baseline: ${fmt(serialW3Ms)} ms.`,
    '',
    '| runner | W1 tasks/s | W2 p50 µs | W2 p99 µs | W3 speedup | W4 MiB/s |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.runner} | ${fmt(row.w1)}${ratio(row, 'w1', true)} | ${fmt(row.w2p50)}${ratio(row, 'w2p50', false)} | ${fmt(row.w2p99)} | ${fmt(row.w3, 2)}${ratio(row, 'w3', true)} | ${fmt(row.w4)}${ratio(row, 'w4', true)} |`,
    );
  }
  lines.push('');
  lines.push(
    `- LocalExecutor submit overhead: ${fmt(extras.submitUs, 2)} µs per no-op task (100,000 submits).`,
  );
  if (extras.heapMb !== undefined)
    lines.push(`- Heap cost of 100,000 pending no-op futures: ${fmt(extras.heapMb, 1)} MB.`);
  lines.push(
    `- Event stream, W1 on threads: ${fmt(extras.eventsOff)} tasks/s with no listener, ${fmt(extras.eventsOn)} with a listener on every event, ${fmt(extras.eventsOffAgain)} after it unsubscribed.`,
  );
  return lines.join('\n');
}

await main();
