/**
 * The cluster under stress: workers killed mid-task, poison tasks, resource routing, Redis going
 * away, --no-source, and no process left behind. Real redis-server processes, real workers.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  ResourceUnavailableError,
  TaskDefinitionError,
  type TaskEvent,
} from 'weftjs';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { add, gpuJob, nap, poison, spin } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const workerEntry = join(root, 'dist/distributed/worker-entry.js');
const cli = join(root, 'dist/cli/main.js');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Options {
  name: string;
  concurrency?: number;
  resources?: Record<string, number>;
  acceptSource?: boolean;
}

/** A cluster worker as its own process (the local cluster's entry), ready when this resolves. */
async function startWorker(address: string, options: Options): Promise<ChildProcess> {
  const child = fork(workerEntry, [], {
    env: {
      ...process.env,
      WEFT_CLUSTER_WORKER: JSON.stringify({ address, concurrency: 1, ...options }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const message = await new Promise<{ t: string; message?: string }>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) =>
      reject(new Error(`worker ${options.name} exited with ${code} while starting`)),
    );
  });
  if (message.t !== 'ready') throw new Error(`worker ${options.name} failed: ${message.message}`);
  return child;
}

async function redis(options?: Parameters<typeof startRedis>[0]): Promise<TestRedis> {
  const server = await startRedis(options);
  cleanups.push(() => server.stop(true));
  return server;
}

async function client(address: string): Promise<DistributedExecutor> {
  const executor = await new DistributedExecutor({ address }).start();
  cleanups.push(() => executor.shutdown({ cancelPending: true }));
  return executor;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('DistributedExecutor reliability', () => {
  it(
    'runs a task again on another worker when its worker is SIGKILLed mid-task',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const workers = new Map<string, ChildProcess>();
      for (const name of ['a', 'b']) workers.set(name, await startWorker(server.address, { name }));
      const executor = await client(server.address);
      const starts: TaskEvent[] = [];
      executor.events.on('started', (event) => {
        starts.push(event);
        if (starts.length === 1) workers.get(event.worker!)!.kill('SIGKILL');
      });
      const before = Date.now();
      const pid = await executor.submit(spin, 300);
      const elapsed = Date.now() - before;
      expect(starts.length).toBeGreaterThanOrEqual(2);
      const [first, second] = starts;
      expect(second!.worker).not.toBe(first!.worker);
      expect(pid).toBe(workers.get(second!.worker!)!.pid);
      // Recovery is about lockDuration (3 s) + stalledInterval (1.5 s); be generous on a noisy machine.
      expect(elapsed).toBeLessThan(20_000);
    },
  );

  it(
    'fails a task that killed three workers with WorkerCrashedError',
    { timeout: 90_000 },
    async () => {
      const server = await redis();
      for (const name of ['p1', 'p2', 'p3', 'p4']) await startWorker(server.address, { name });
      const executor = await client(server.address);
      const error = await executor.submit(poison).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('WorkerCrashedError');
      expect((error as Error).message).toMatch(/workers that died/);
      // The cluster still serves.
      expect(await executor.submit(add, 2, 3)).toBe(5);
    },
  );

  it(
    'routes resource tasks only to workers that offer enough, one at a time per GPU',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const gpu = await startWorker(server.address, {
        name: 'gpu',
        concurrency: 2,
        resources: { GPU: 1 },
      });
      const cpu = await startWorker(server.address, { name: 'cpu', concurrency: 2 });
      const executor = await client(server.address);
      const file = join(mkdtempSync(join(tmpdir(), 'weft-gpu-')), 'intervals');
      writeFileSync(file, '');
      const pids = await executor.wait(
        executor.map(gpuJob, Array(6).fill(file), Array(6).fill(60)),
      );
      expect(new Set(pids)).toEqual(new Set([gpu.pid]));
      const intervals = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(' ').map(Number) as [number, number, number])
        .sort((x, y) => x[0] - y[0]);
      expect(intervals).toHaveLength(6);
      for (let i = 1; i < intervals.length; i++)
        expect(intervals[i]![0]).toBeGreaterThanOrEqual(intervals[i - 1]![1]);
      // Plain tasks still spread to the CPU worker.
      const spread = await executor.wait(executor.map(spin, Array(8).fill(50)));
      expect(spread).toContain(cpu.pid);
    },
  );

  it(
    'does not lose submitted tasks or results when Redis restarts mid-run',
    { timeout: 90_000 },
    async () => {
      const server = await redis({ appendonly: true });
      await startWorker(server.address, { name: 'r1', concurrency: 2 });
      const executor = await client(server.address);
      const futures = executor.map(
        nap,
        Array(20).fill(300),
        Array.from({ length: 20 }, (_, i) => i),
      );
      await new Promise((r) => setTimeout(r, 400));
      await server.restart();
      const late = executor.submit(add, 40, 2);
      expect(await executor.wait(futures)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(await late).toBe(42);
    },
  );

  it(
    'refuses shipped source on a --no-source worker but runs task()s',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      await startWorker(server.address, { name: 'strict', acceptSource: false });
      const executor = await client(server.address);
      expect(await executor.submit(add, 1, 2)).toBe(3);
      const error = await executor
        .submit((x: number) => x * 2, 4)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(TaskDefinitionError);
      expect((error as Error).message).toMatch(/--no-source/);
    },
  );

  it('refuses at submit what no local-cluster worker can offer', { timeout: 60_000 }, async () => {
    const executor = await new DistributedExecutor({ workers: 1 }).start();
    cleanups.push(() => executor.shutdown());
    expect(() => executor.submit(gpuJob, '/dev/null', 1)).toThrow(ResourceUnavailableError);
    expect(await executor.submit(add, 1, 1)).toBe(2);
  });

  it('explains how to get redis-server when none is on PATH', { timeout: 30_000 }, async () => {
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(new DistributedExecutor({ workers: 1 }).start()).rejects.toThrow(
        /redis-server.*(apt-get install redis-server|address)/s,
      );
    } finally {
      process.env.PATH = saved;
    }
  });

  it(
    'fails to start, without hanging, when nothing answers at the address',
    { timeout: 60_000 },
    async () => {
      const started = Date.now();
      await expect(
        new DistributedExecutor({ address: 'redis://127.0.0.1:1' }).start(),
      ).rejects.toThrow(/Could not reach Redis at redis:\/\/127\.0\.0\.1:1/);
      expect(Date.now() - started).toBeLessThan(40_000);
    },
  );

  it('rejects bad addresses with ConfigurationError and never prints the password', () => {
    expect(() => new DistributedExecutor({ address: 'http://x:6379' })).toThrow(ConfigurationError);
    expect(() => new DistributedExecutor({ address: 'not a url' })).toThrow(ConfigurationError);
    try {
      new DistributedExecutor({ address: 'redis://:hunter2@host:6379/x' });
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('hunter2');
    }
  });

  it('connects with a password given in the URL', { timeout: 60_000 }, async () => {
    const server = await redis({ password: 's3cret' });
    await startWorker(server.address, { name: 'auth' });
    const executor = await client(server.address);
    expect(await executor.submit(add, 2, 2)).toBe(4);
    expect(executor.address).not.toContain('s3cret');
  });

  it('leaves nothing running after the parent is SIGKILLed', { timeout: 60_000 }, async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'weft-orphan-')), 'parent.mjs');
    writeFileSync(
      script,
      `import { DistributedExecutor } from ${JSON.stringify(join(root, 'dist/index.js'))};
       const ex = await new DistributedExecutor({ workers: 2, localProcesses: true }).start();
       const { execSync } = await import('node:child_process');
       const pids = execSync('pgrep -P ' + process.pid).toString().trim().split('\\n').map(Number);
       const grand = pids.flatMap((p) => { try { return execSync('pgrep -P ' + p).toString().trim().split('\\n').map(Number); } catch { return []; } });
       process.stdout.write(JSON.stringify([...pids, ...grand]) + '\\n');
       setInterval(() => {}, 1000);`,
    );
    const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => parent.kill('SIGKILL'));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      parent.once('exit', (code) => reject(new Error(`parent exited early with ${code}`)));
    });
    const children = JSON.parse(line) as number[];
    expect(children.length).toBeGreaterThanOrEqual(4); // 2 workers, the supervisor and redis-server
    parent.kill('SIGKILL');
    await until(
      () => children.every((pid) => !alive(pid)),
      15_000,
      'children of the killed parent to exit',
    );
  });

  it(
    'a `weft worker` started from the CLI joins a cluster and leaves on SIGTERM',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const worker = spawn(
        process.execPath,
        [cli, 'worker', '--address', server.address, '--name', 'cli-1', '--concurrency', '2'],
        {
          stdio: ['ignore', 'inherit', 'pipe'],
        },
      );
      cleanups.push(() => worker.kill('SIGKILL'));
      let stderr = '';
      worker.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await until(() => stderr.includes('joined'), 20_000, 'the CLI worker to join');
      const executor = await client(server.address);
      const events: string[] = [];
      executor.events.on('started', (e) => events.push(e.worker ?? ''));
      expect(await executor.submit(spin, 10)).toBe(worker.pid);
      expect(events).toContain('cli-1');
      const exited = new Promise<number | null>((resolve) =>
        worker.once('exit', (code) => resolve(code)),
      );
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
    },
  );
});
