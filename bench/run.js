// npm run bench [-- --quick] [-- --only w1,w2,extras] [-- --no-distributed]
//
// One process run: the same workloads on weft's executors and, as anchors, directly on piscina,
// tinypool and workerpool (and raw BullMQ for the cluster), then a markdown table with ratios.
//   W1  10,000 no-op tasks submitted, then all awaited: tasks/s (median of 3 rounds)
//   W2  1,000 sequential submit-then-await round trips of a no-op: p50 and p99 in µs
//   W3  64 tasks of ~25 ms CPU each (a fixed loop, see work.js): speedup over running them
//       serially in the main thread
//   W4  200 tasks each given its own 1 MiB Uint8Array, returning its length: MiB/s
// With the cluster rows: W1 with a secret against without, and W1/W2 over TLS against TCP
// (bench/trust.js). Plus ("extras") LocalExecutor's submit overhead, the heap cost of 100,000 pending futures, and
// the cost of the event stream (W1 on threads with and without a listener).
//
// --quick    fewer iterations, a smoke run (results.md is left alone)
// --only     comma-separated subset of w1, w2, w3, w4, w5, w3c, w6, extras (results.md is left alone)
// --no-distributed  skip the cluster rows (they need redis-server on PATH)
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import workerpool from 'workerpool';
import { LocalExecutor, LocalPoolExecutor } from '../dist/index.js';
import { benchDistributed } from './distributed.js';
import { benchIo, benchW3Concurrency, renderIo } from './io.js';
import { benchData, renderData } from './data.js';
import { benchSecret, benchTls } from './trust.js';
import { block, bytes, cpu, noop } from './tasks.js';
import { calibrate, spin } from './work.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg =
  args.find((a) => a.startsWith('--only='))?.slice('--only='.length) ??
  (args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined);
const only = (onlyArg ?? '').split(',').filter(Boolean);
const parts = ['w1', 'w2', 'w3', 'w4', 'w5', 'w3c', 'w6', 'extras'];
const unknown = only.filter((w) => !parts.includes(w));
if (unknown.length > 0 || (onlyArg !== undefined && only.length === 0)) {
  process.stderr.write(
    `bench: --only takes a comma-separated list of ${parts.join(', ')}; got ${JSON.stringify(onlyArg)}.\n`,
  );
  process.exit(2);
}
const want = (part) => only.length === 0 || only.includes(part);
const distributed = !args.includes('--no-distributed');
const workers = 2;
const N1 = quick ? 2_000 : 10_000;
const N2 = quick ? 200 : 1_000;
const N3 = 64;
const N4 = quick ? 50 : 200;
const ROUNDS = quick ? 1 : 3;

const piscinaFile = fileURLToPath(new URL('./anchors/piscina-worker.js', import.meta.url));
const workerpoolFile = fileURLToPath(new URL('./anchors/workerpool-worker.js', import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const log = (line) => process.stderr.write(`  ${line}\n`);

/**
 * Every runner stays up for the whole run and each workload is measured runner after runner, W2
 * in interleaved blocks: on this machine an idle worker's wake-up latency drifts by 3x within
 * seconds, so measuring one runner long after another would compare the machine, not the pools.
 */
async function measureAll(runners, iterations) {
  for (const r of runners) {
    r.row = { runner: r.label, kind: r.kind };
    await Promise.all(Array.from({ length: 200 }, () => r.call('noop')));
    for (let i = 0; i < 50; i++) await r.call('noop');
    await Promise.all(Array.from({ length: 4 }, () => r.call('cpu', Math.round(iterations / 5))));
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
    // W1 again with a full gc() before each timed round, as a user's first big map runs on a
    // fresh heap: nobody is timed on a heap grown by the previous runner.
    if (typeof globalThis.gc === 'function') {
      for (const r of runners) {
        const rates = [];
        for (let round = 0; round < ROUNDS; round++) {
          globalThis.gc();
          const t = performance.now();
          const pending = new Array(N1);
          for (let i = 0; i < N1; i++) pending[i] = r.call('noop');
          await Promise.all(pending);
          rates.push(N1 / ((performance.now() - t) / 1000));
        }
        r.row.w1gc = median(rates);
      }
    }
    log('W1 done');
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
    log('W2 done');
  }
  if (want('w3')) {
    for (const r of runners) {
      const t = performance.now();
      await Promise.all(Array.from({ length: N3 }, () => r.call('cpu', iterations)));
      r.row.w3ms = performance.now() - t;
    }
    log('W3 done');
  }
  if (want('w4')) {
    for (const r of runners) {
      // Fresh arrays per runner: a pool that transferred them would leave them detached.
      const payloads = Array.from({ length: N4 }, (_, i) =>
        new Uint8Array(1024 * 1024).fill(i & 255),
      );
      const t = performance.now();
      const lengths = await Promise.all(payloads.map((p) => r.call('bytes', p)));
      r.row.w4 = N4 / ((performance.now() - t) / 1000);
      r.row.w4Wrong = lengths.some((n) => n !== 1024 * 1024);
    }
    log('W4 done');
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

function anchorRunners() {
  const runners = [];
  const piscina = new Piscina({ filename: piscinaFile, minThreads: workers, maxThreads: workers });
  runners.push({
    label: 'piscina 5 (threads)',
    kind: 'threads',
    call: (name, arg) => piscina.run(arg, { name }),
    close: () => piscina.destroy(),
  });
  for (const [runtime, kind, extra] of [
    ['worker_threads', 'threads', {}],
    ['child_process', 'processes', { serialization: 'advanced' }],
  ]) {
    const pool = new Tinypool({
      filename: piscinaFile,
      runtime,
      minThreads: workers,
      maxThreads: workers,
      ...extra,
    });
    runners.push({
      label: `tinypool 2 (${runtime}${kind === 'processes' ? ', advanced' : ''})`,
      kind,
      call: (name, arg) => pool.run(arg, { name }),
      close: () => pool.destroy(),
    });
  }
  for (const [workerType, kind] of [
    ['thread', 'threads'],
    ['process', 'processes'],
  ]) {
    const pool = workerpool.pool(workerpoolFile, {
      minWorkers: workers,
      maxWorkers: workers,
      workerType,
    });
    runners.push({
      label: `workerpool 10 (${workerType})`,
      kind,
      call: (name, arg) => pool.exec(name, arg === undefined ? [] : [arg]),
      close: () => pool.terminate(),
    });
  }
  return runners;
}

async function main() {
  const startedAt = performance.now();
  const loadAtStart = loadavg()[0];
  if (loadAtStart > 0.5) {
    log(
      `the machine is busy (load average ${loadAtStart.toFixed(2)} over the last minute): expect noisy figures`,
    );
  }
  const iterations = calibrate(25);
  spin(iterations);
  const serialStart = performance.now();
  for (let i = 0; i < N3; i++) spin(iterations);
  const serialW3Ms = performance.now() - serialStart;
  log(
    `W3 task: ${iterations.toLocaleString('en-US')} iterations, ${(serialW3Ms / N3).toFixed(1)} ms serially`,
  );

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
    ...anchorRunners(),
  ];
  const rows =
    only.length > 0 && !only.some((w) => ['w1', 'w2', 'w3', 'w4'].includes(w))
      ? (await Promise.all(runners.map((r) => r.close())), [])
      : await measureAll(runners, iterations);
  for (const row of rows) if (row.w3ms) row.w3 = serialW3Ms / row.w3ms;

  const notes = [];
  if (rows.length > 0) {
    let clusterRows;
    if (distributed) {
      try {
        clusterRows = await benchDistributed({ quick, serialW3Ms, iterations, want });
        log('distributed done');
      } catch (error) {
        notes.push(`Distributed rows not measured: ${error?.message ?? error}`);
      }
      if (want('w1')) notes.push(...(await trustNotes()));
    } else {
      notes.push('Distributed rows not measured (--no-distributed).');
    }
    // The rows stay in the table either way, so every results.md has the same shape.
    rows.push(
      ...(
        clusterRows ?? [
          { runner: 'weft distributed (local cluster, 2 worker processes)' },
          { runner: 'raw BullMQ (2 worker processes)' },
        ]
      ).map((row) => ({ ...row, kind: 'cluster' })),
    );
  }

  const extras = want('extras') ? await extraFigures() : undefined;
  const io = want('w5') ? await benchIo({ quick, distributed }) : undefined;
  const w3c = want('w3c') ? await benchW3Concurrency({ quick, iterations }) : undefined;
  const data = want('w6') && distributed ? await benchData({ quick }) : undefined;
  const load = `${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end`;
  let table = render(rows, extras, { serialW3Ms, iterations, notes, load });
  if (io || w3c) {
    table += `\n\n${renderIo(io ?? { rows: [], memory: [], n: 0, rounds: 0, notes: [] }, w3c)}`;
  }
  if (data)
    table += `\n\n### W6, a data pipeline on a cluster of 2 worker processes\n\n${renderData(data)}`;
  process.stdout.write(`${table}\n`);
  log(`took ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  if (!quick && only.length === 0) {
    writeFileSync(new URL('./results.md', import.meta.url), `${table}\n`);
    log('written to bench/results.md');
  }
}

function fmt(v, digits = 0) {
  return v === undefined
    ? '–'
    : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The cost of a secret and of TLS on the cluster, as result lines. */
async function trustNotes() {
  const lines = [];
  try {
    const s = await benchSecret({ quick });
    lines.push(
      `Cluster W1 with a secret (signed jobs and results): ${fmt(s.signed)} tasks/s against ${fmt(s.plain)} without, ${fmt(((s.plain - s.signed) / s.plain) * 100, 1)}% slower (medians of ${s.rounds} interleaved rounds, two local clusters of 2 worker processes); CPU time per task over the client, redis-server and workers ${fmt(s.cpu.signed, 1)} µs against ${fmt(s.cpu.plain, 1)} µs, ${fmt(((s.cpu.signed - s.cpu.plain) / s.cpu.plain) * 100, 1)}% more.`,
    );
    log('secret done');
  } catch (error) {
    lines.push(`Secret cost not measured: ${error?.message ?? error}`);
  }
  try {
    const t = await benchTls({ quick });
    lines.push(
      `Cluster over mutual TLS against plain TCP (own redis-server each, 2 weft worker processes each, ${t.rounds} interleaved rounds): W1 ${fmt(t.tls.w1)} against ${fmt(t.tcp.w1)} tasks/s (${fmt(((t.tcp.w1 - t.tls.w1) / t.tcp.w1) * 100, 1)}% slower); W2 p50 ${fmt(t.tls.p50)} against ${fmt(t.tcp.p50)} µs, p99 ${fmt(t.tls.p99)} against ${fmt(t.tcp.p99)} µs.`,
    );
    log('tls done');
  } catch (error) {
    lines.push(`TLS cost not measured: ${error?.message ?? error}`);
  }
  return lines;
}

/** LocalExecutor submit overhead, heap per pending future, event-stream cost. */
async function extraFigures() {
  const out = {};
  {
    const ex = await new LocalExecutor().start();
    for (let i = 0; i < 20_000; i++) ex.submit(noop);
    const n = 100_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) ex.submit(noop);
    out.submitUs = ((performance.now() - t) * 1000) / n;
    await ex.shutdown();
  }
  if (globalThis.gc) {
    // The one worker waits on shared memory, so all 100,000 futures stay pending while measured.
    const ex = await new LocalPoolExecutor({ scheduler: 'threads', workers: 1 }).start();
    const gate = new SharedArrayBuffer(4);
    const blocker = ex.submit(block, gate);
    while (blocker.status !== 'running') await new Promise((r) => setTimeout(r, 5));
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    const futures = new Array(100_000);
    for (let i = 0; i < futures.length; i++) futures[i] = ex.submit(noop);
    globalThis.gc();
    out.heapMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    out.pendingAtMeasure = futures.filter((f) => f.status === 'pending').length;
    Atomics.store(new Int32Array(gate), 0, 1);
    Atomics.notify(new Int32Array(gate), 0);
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
  log('extras done');
  return out;
}

function render(rows, extras, { serialW3Ms, iterations, notes, load }) {
  const best = (kind, key, higher) => {
    const values = rows
      .filter((r) => r.kind === kind && !r.runner.startsWith('weft') && r[key] !== undefined)
      .map((r) => r[key]);
    if (values.length === 0) return undefined;
    return higher ? Math.max(...values) : Math.min(...values);
  };
  const ratio = (row, key, higher) => {
    if (!row.runner.startsWith('weft') || row[key] === undefined) return '';
    const b = best(row.kind, key, higher);
    if (b === undefined) return '';
    return ` (${(higher ? row[key] / b : b / row[key]).toFixed(2)}x)`;
  };
  const cpu = cpus();
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; 1-minute load average ${load}; ${workers} workers each${quick ? ' (quick run)' : ''}. Ratios compare each weft row with the best anchor of its kind in this run (threads: piscina, tinypool worker_threads, workerpool thread; processes: tinypool child_process, workerpool process; cluster: raw BullMQ); higher is better for weft, for W2 it is anchor latency / weft latency. W3 task: ${iterations.toLocaleString('en-US')} loop iterations, ${fmt(serialW3Ms / 64, 1)} ms each serially (${fmt(serialW3Ms)} ms for all 64).`,
    '',
    '| runner | W1 tasks/s | W2 p50 µs | W2 p99 µs | W3 speedup | W4 MiB/s |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.runner} | ${fmt(row.w1)}${ratio(row, 'w1', true)} | ${fmt(row.w2p50)}${ratio(row, 'w2p50', false)} | ${fmt(row.w2p99)}${ratio(row, 'w2p99', false)} | ${fmt(row.w3, 2)}${ratio(row, 'w3', true)} | ${fmt(row.w4)}${row.w4Wrong ? ' (wrong lengths returned)' : ''}${ratio(row, 'w4', true)} |`,
    );
  }
  if (rows.length === 0) lines.length = 1;
  lines.push('');
  const afterGc = rows.filter((row) => row.w1gc !== undefined && row.kind !== 'cluster');
  if (afterGc.length > 0) {
    const tinypool = afterGc.find((row) => /tinypool.*worker_threads/.test(row.runner))?.w1gc;
    lines.push(
      `- W1 with a full gc() before each timed round (tasks/s${tinypool ? ', ratio to tinypool worker_threads' : ''}): ${afterGc
        .map(
          (row) =>
            `${row.runner} ${fmt(row.w1gc)}${tinypool && /^weft (threads|processes)/.test(row.runner) ? ` (${fmt(row.w1gc / tinypool, 2)}x)` : ''}`,
        )
        .join('; ')}.`,
    );
  }
  if (extras) {
    lines.push(
      `- LocalExecutor submit overhead: ${fmt(extras.submitUs, 2)} µs per no-op task (100,000 submits).`,
    );
    if (extras.heapMb !== undefined)
      lines.push(
        `- Heap cost of 100,000 pending no-op futures (threads pool, its one worker blocked): ${fmt(extras.heapMb, 1)} MB, ${fmt((extras.heapMb * 2 ** 20) / 100_000)} bytes each (${fmt(extras.pendingAtMeasure)} still pending when measured).`,
      );
    else lines.push('- Heap cost of pending futures: not measured (run node with --expose-gc).');
    lines.push(
      `- Event stream, W1 on threads: ${fmt(extras.eventsOff)} tasks/s with no listener, ${fmt(extras.eventsOn)} with a listener on every event, ${fmt(extras.eventsOffAgain)} after it unsubscribed.`,
    );
  }
  for (const note of notes) lines.push(`- ${note}`);
  return lines.join('\n').trimEnd();
}

await main();
