// Trust rows of the benchmark, each pair measured in the same run with rounds interleaved (this
// machine's speed drifts): cluster W1 with a secret (signed jobs and results) against the same
// local cluster without; W1 and W2 over TLS (mutual, a CA made by openssl now) against plain TCP,
// each on its own redis-server with two `weft worker` processes.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistributedExecutor } from '../dist/index.js';
import { freePort } from '../dist/distributed/redis-server.js';
import { noop } from './cluster-tasks.js';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

async function w1(ex, n) {
  const t = performance.now();
  await ex.wait(
    ex.map(
      noop,
      Array.from({ length: n }, () => 0),
    ),
  );
  return n / ((performance.now() - t) / 1000);
}

async function w2(ex, n, into) {
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ex.submit(noop, 0);
    into.push((performance.now() - t) * 1000);
  }
}

/** This process's descendants (Linux `ps`): the processes a local cluster started. */
function descendants() {
  const table = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number));
  const found = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of table)
      if (found.has(ppid) && !found.has(pid)) {
        found.add(pid);
        grew = true;
      }
  }
  found.delete(process.pid);
  return found;
}

/** CPU time (user + system, ms) the processes used so far, from /proc (0 for one that is gone). */
function cpuMs(pids) {
  const hz = 100; // USER_HZ: /proc/<pid>/stat counts clock ticks of 10 ms on Linux
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited
    }
  }
  return (ticks * 1000) / hz;
}

/**
 * Cluster W1 with and without a secret: tasks/s (medians of interleaved rounds) and the CPU time
 * per task of every process involved (this client, the redis-server, the workers), which a noisy
 * machine disturbs far less than throughput: { plain, signed, cpu: { plain, signed }, rounds }.
 */
export async function benchSecret({ quick = false } = {}) {
  const rounds = quick ? 2 : 15;
  const n = quick ? 2000 : 10000;
  const before = descendants();
  const plain = await new DistributedExecutor({ workers: 2, localProcesses: true }).start();
  const plainPids = [...descendants()].filter((pid) => !before.has(pid));
  const middle = descendants();
  const signed = await new DistributedExecutor({
    workers: 2,
    localProcesses: true,
    secret: 'bench-secret-0123456789abcdef',
  }).start();
  const signedPids = [...descendants()].filter((pid) => !middle.has(pid));
  try {
    for (const ex of [plain, signed]) await w1(ex, 1000);
    const rates = { plain: [], signed: [] };
    const cpu = { plain: [], signed: [] };
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so that neither always runs on a warmer machine.
      const order = r % 2 === 0 ? ['plain', 'signed'] : ['signed', 'plain'];
      for (const which of order) {
        const pids = which === 'plain' ? plainPids : signedPids;
        const client = process.cpuUsage();
        const others = cpuMs(pids);
        rates[which].push(await w1(which === 'plain' ? plain : signed, n));
        const used = process.cpuUsage(client);
        cpu[which].push(((used.user + used.system) / 1000 + cpuMs(pids) - others) * (1000 / n));
      }
    }
    return {
      plain: median(rates.plain),
      signed: median(rates.signed),
      cpu: { plain: median(cpu.plain), signed: median(cpu.signed) },
      rounds,
    };
  } finally {
    await plain.shutdown();
    await signed.shutdown();
  }
}

function makePki(dir) {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = (args) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error || r.status !== 0)
      throw new Error(`openssl ${args[0]} failed: ${r.stderr || r.error?.message}`);
  };
  run([
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=bench CA',
  ]);
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    run([
      'req',
      '-new',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]);
    run([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ]);
  }
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') };
}

async function redisServer(args, ping) {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!ping()) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`redis-server ${args.join(' ')} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

async function workers(options) {
  return Promise.all(
    [1, 2].map(
      (i) =>
        new Promise((resolve, reject) => {
          const child = fork(new URL('./anchors/weft-worker.js', import.meta.url), [], {
            stdio: 'inherit',
            env: {
              ...process.env,
              WEFT_BENCH_WORKER: JSON.stringify({ ...options, name: `bench-${i}` }),
            },
          });
          child.once('message', () => resolve(child));
          child.once('exit', (code) => reject(new Error(`bench worker exited with ${code}`)));
        }),
    ),
  );
}

/** W1 and W2 over mutual TLS and over plain TCP: { tcp: { w1, p50, p99 }, tls: { ... } }. */
export async function benchTls({ quick = false } = {}) {
  const rounds = quick ? 2 : 5;
  const n1 = quick ? 2000 : 10000;
  const n2 = quick ? 200 : 1000;
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-tls-'));
  const children = [];
  const clients = [];
  try {
    const pki = makePki(dir);
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    const tcpPort = await freePort();
    const tlsPort = await freePort();
    const cli = (port, extra) => () =>
      spawnSync('redis-cli', ['-p', String(port), ...extra, 'ping'], {
        encoding: 'utf8',
      }).stdout.trim() === 'PONG';
    const tlsCli = ['--tls', '--cacert', pki.ca, '--cert', pki.cert, '--key', pki.key];
    children.push(await redisServer(['--port', String(tcpPort), ...common], cli(tcpPort, [])));
    children.push(
      await redisServer(
        [
          '--port',
          '0',
          '--tls-port',
          String(tlsPort),
          '--tls-cert-file',
          join(dir, 'server.crt'),
          '--tls-key-file',
          join(dir, 'server.key'),
          '--tls-ca-cert-file',
          pki.ca,
          '--tls-auth-clients',
          'yes',
          ...common,
        ],
        cli(tlsPort, tlsCli),
      ),
    );
    const targets = {
      tcp: { address: `redis://127.0.0.1:${tcpPort}` },
      tls: { address: `rediss://127.0.0.1:${tlsPort}`, tls: pki },
    };
    for (const options of Object.values(targets)) children.push(...(await workers(options)));
    const ex = {};
    for (const [which, options] of Object.entries(targets)) {
      ex[which] = await new DistributedExecutor(options).start();
      clients.push(ex[which]);
      await w1(ex[which], 1000);
    }
    const rates = { tcp: [], tls: [] };
    const lat = { tcp: [], tls: [] };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['tcp', 'tls'] : ['tls', 'tcp'];
      for (const which of order) rates[which].push(await w1(ex[which], n1));
      for (const which of order) await w2(ex[which], Math.ceil(n2 / rounds), lat[which]);
    }
    const summary = (which) => {
      const sorted = [...lat[which]].sort((a, b) => a - b);
      return {
        w1: median(rates[which]),
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
      };
    };
    return { tcp: summary('tcp'), tls: summary('tls'), rounds };
  } finally {
    await Promise.all(clients.map((c) => c.shutdown()));
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
