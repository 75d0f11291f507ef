// W6, a data pipeline on a cluster of 2 weft worker processes: 64 tasks each making 4 MiB, each
// consumed by a task returning its length, then one task summing the lengths (fan-out, fan-in).
// Rows, in one run: weft with values staying in the cluster, its workers started with README's
// allocator settings (what a local cluster's worker processes get) and with the C library's
// defaults; weft with every value awaited in the client and sent back (the path every value took
// before values stayed in Redis); and, as the anchor, dask.distributed (Debian's
// python3-distributed) on a LocalCluster of 2 worker processes.
// The client reaches Redis through a byte-counting proxy: "client read" is measured.
// Between rounds (untimed) the client collects garbage and waits until the round's values are
// deleted from Redis: what dask's `del made, lengths` does, so that both start each round clean.
//
//   node --expose-gc bench/data.js [--quick]      (npm run bench runs it too)
import { fork, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { DistributedExecutor } from '../dist/index.js';
import { workerAllocatorEnv } from '../dist/distributed/allocator.js';
import { startRedisServer } from '../dist/distributed/redis-server.js';
import { length, make, total } from './data-tasks.js';

const MiB = 1024 * 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const daskScript = fileURLToPath(new URL('./anchors/dask_w6.py', import.meta.url));

/** A TCP proxy that counts the bytes Redis sends through it. */
async function countingProxy(port) {
  let toClient = 0;
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk) => (toClient += chunk.length));
    client.pipe(upstream).pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    read: () => toClient,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function startWorkers(address, n, env) {
  const children = [];
  for (let i = 0; i < n; i++) {
    const child = fork(cli, ['worker', '--address', address, '--name', `w6-${i}`], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env,
    });
    children.push(child);
  }
  return children;
}

/** Between rounds: garbage collected (--expose-gc) and the client's values gone from Redis. */
async function settle(probe) {
  for (let i = 0; i < 200; i++) {
    globalThis.gc?.();
    if ((await probe.keys('*:val:*')).length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** W6 on 2 weft workers started with `env`: the pipeline's rows ('stay', and 'through' if asked). */
async function benchWeft({ rounds, env, through }) {
  const n = 64;
  const size = 4 * MiB;
  const redis = await startRedisServer();
  const workers = await startWorkers(redis.address, 2, env);
  const proxy = await countingProxy(redis.port);
  const probe = new Redis(redis.port, '127.0.0.1');
  const ex = await new DistributedExecutor({ address: `redis://127.0.0.1:${proxy.port}` }).start();
  const rows = {};
  try {
    // Both workers joined and warm.
    await ex.wait(ex.map(length, [[1], [2], [3], [4]]));
    const stay = { ms: [], read: [] };
    const all = { ms: [], read: [] };
    for (let r = 0; r < rounds; r++) {
      {
        await settle(probe);
        const before = proxy.read();
        const t = performance.now();
        const lengths = Array.from({ length: n }, (_, i) =>
          ex.submit(length, ex.submit(make, size, i % 256)),
        );
        const sum = await ex.submit(total, lengths);
        stay.ms.push(performance.now() - t);
        stay.read.push(proxy.read() - before);
        if (sum !== n * size) throw new Error(`W6 summed ${sum}, not ${n * size}`);
      }
      if (through) {
        await settle(probe);
        const before = proxy.read();
        const t = performance.now();
        const lengths = Array.from({ length: n }, (_, i) =>
          ex.submit(make, size, i % 256).then((value) => ex.submit(length, value)),
        );
        const sum = await ex.submit(total, await Promise.all(lengths));
        all.ms.push(performance.now() - t);
        all.read.push(proxy.read() - before);
        if (sum !== n * size) throw new Error(`W6 summed ${sum}, not ${n * size}`);
      }
    }
    rows.stay = { ms: median(stay.ms), readMiB: median(stay.read) / MiB };
    if (through) rows.through = { ms: median(all.ms), readMiB: median(all.read) / MiB };
  } finally {
    await ex.shutdown();
    probe.disconnect();
    proxy.close();
    for (const w of workers) w.kill('SIGTERM');
    await redis.stop();
  }
  return rows;
}

export async function benchData({ quick = false } = {}) {
  const rounds = quick ? 1 : 3;
  const tuned = await benchWeft({
    rounds,
    env: { ...process.env, ...workerAllocatorEnv() },
    through: true,
  });
  // The C library's defaults: no GLIBC_TUNABLES at all.
  const plain = { ...process.env };
  delete plain.GLIBC_TUNABLES;
  const defaults = await benchWeft({ rounds, env: plain, through: false });
  const rows = { stay: tuned.stay, stayDefault: defaults.stay, through: tuned.through };
  // Debian's python3 holds python3-distributed; a pyenv or venv python3 on PATH may not.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const dask = spawnSync(python, [daskScript, String(rounds)], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (dask.status === 0)
    rows.dask = { ms: median(JSON.parse(dask.stdout.trim().split('\n').pop()).ms) };
  else
    rows.daskError = `dask.distributed did not run (${(dask.stderr || dask.error?.message || '').trim().split('\n').pop()}); install Debian's python3-distributed`;
  return rows;
}

/** Markdown lines for README/results.md. */
export function renderData(rows) {
  const fmt = (x, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [
    '| W6 runner | wall ms | client read MiB |',
    '|---|---:|---:|',
    `| weft, values stay in the cluster (workers with README's allocator settings) | ${fmt(rows.stay.ms)} | ${fmt(rows.stay.readMiB, 2)} |`,
    `| weft, values stay, workers with the C library's default allocator settings | ${fmt(rows.stayDefault.ms)} | ${fmt(rows.stayDefault.readMiB, 2)} |`,
    `| weft, every value through the client | ${fmt(rows.through.ms)} | ${fmt(rows.through.readMiB, 1)} |`,
    rows.dask
      ? `| dask.distributed (anchor) | ${fmt(rows.dask.ms)} | — |`
      : `| dask.distributed (anchor) | ${rows.daskError} | — |`,
  ];
  const ratios = [
    `staying in the cluster is ${fmt(rows.through.ms / rows.stay.ms, 2)}x faster than through the client`,
  ];
  ratios.push(
    `the allocator settings make it ${fmt(rows.stayDefault.ms / rows.stay.ms, 2)}x faster`,
  );
  if (rows.dask)
    ratios.push(
      `weft/dask speed ${fmt(rows.dask.ms / rows.stay.ms, 2)}x, ${fmt(rows.dask.ms / rows.stayDefault.ms, 2)}x with default settings (above 1: weft faster)`,
    );
  lines.push('', `W6: ${ratios.join('; ')}.`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await benchData({ quick: process.argv.includes('--quick') });
  console.log(renderData(rows));
}
