/**
 * Failures must be loud: Redis killed (with and without a restart, with and without
 * persistence), the local cluster's redis-server killed, shutdown() while Redis is gone, clients
 * killed or interrupted mid-map, workers that cannot start or were frozen. Real redis-server and
 * `weft worker` processes; side effects (files) say what ran.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DistributedExecutor, RedisLostError, type Future, type WarningEvent } from 'weftjs';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { add, mark, nap } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const job = join(root, 'test/distributed/fault-job.ts');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function redis(options?: Parameters<typeof startRedis>[0]): Promise<TestRedis> {
  const server = await startRedis(options);
  cleanups.push(() => server.stop(true));
  return server;
}

/** A `weft worker` process; `lines` collects what it logs. Resolves once it joined. */
async function worker(
  address: string,
  name: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(
    process.execPath,
    [cli, 'worker', '--address', address, '--name', name, ...extra],
    { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  let buffer = '';
  child.stderr?.on('data', (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  await until(() => lines.some((l) => l.includes(' joined ')), `worker ${name} to join`, 20_000);
  return { child, lines };
}

async function client(address: string): Promise<DistributedExecutor> {
  const executor = await new DistributedExecutor({ address }).start();
  cleanups.push(() => executor.shutdown({ cancelPending: true }));
  return executor;
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** How each future ended: its value, or its error. */
function outcomes<T>(futures: Future<T>[]): Promise<PromiseSettledResult<T>[]> {
  return Promise.allSettled(futures.map((f) => f.result()));
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'weft-faults-'));
}

function count(dir: string, prefix: string): number {
  return readdirSync(dir).filter((f) => f.startsWith(`${prefix}-`)).length;
}

function warnings(executor: DistributedExecutor): WarningEvent[] {
  const seen: WarningEvent[] = [];
  executor.events.on('warning', (event) => seen.push(event));
  return seen;
}

describe('when Redis fails', () => {
  it(
    'rejects every unfinished task with RedisLostError when Redis restarts without persistence',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const { lines } = await worker(server.address, 'np', ['--concurrency', '2']);
      const executor = await client(server.address);
      const dir = tempDir();
      const futures = executor.map(
        mark,
        Array<string>(6).fill(dir),
        [0, 1, 2, 3, 4, 5],
        Array<number>(6).fill(4000),
      );
      await until(() => count(dir, 'start') === 2, 'two tasks to start');
      await server.crash();
      const killed = Date.now();
      await server.restart();
      const restartedMs = Date.now() - killed;
      const results = await outcomes(futures);
      const settledAfterMs = Date.now() - killed;
      for (const result of results) {
        expect(result.status).toBe('rejected');
        const error = (result as PromiseRejectedResult).reason as RedisLostError;
        expect(error).toBeInstanceOf(RedisLostError);
        expect(error.code).toBe('REDIS_LOST');
        expect(error.reason).toBe('state-lost');
        expect(error.message).toMatch(/came back without the cluster's state/);
      }
      expect(settledAfterMs).toBeLessThan(restartedMs + 10_000);
      console.log(
        `[measured] no persistence: Redis back ${restartedMs} ms after the kill, tasks rejected ${settledAfterMs} ms after it`,
      );
      // The cluster serves again.
      expect(await executor.submit(add, 2, 3)).toBe(5);
      // The worker said what happened in words, not BullMQ's.
      expect(lines.filter((l) => /Missing key|Error:/.test(l))).toEqual([]);
    },
  );

  it(
    'loses nothing when Redis with AOF is SIGKILLed and restarted, and warns while it is gone',
    { timeout: 60_000 },
    async () => {
      const server = await redis({ appendonly: true });
      const { lines } = await worker(server.address, 'aof', ['--concurrency', '2']);
      const executor = await client(server.address);
      const seen = warnings(executor);
      const futures = executor.map(
        nap,
        Array<number>(8).fill(1000),
        Array.from({ length: 8 }, (_, i) => i),
      );
      await new Promise((r) => setTimeout(r, 500));
      await server.crash();
      const killed = Date.now();
      await until(() => seen.length === 1, 'the unreachable warning', 15_000);
      const warnedAfterMs = Date.now() - killed;
      expect(seen[0]!.message).toMatch(/unreachable for [5-9] s/);
      expect(typeof seen[0]!.timestamp).toBe('number');
      await server.restart();
      expect(await executor.wait(futures)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      await until(() => seen.length === 2, 'the back warning');
      expect(seen[1]!.message).toMatch(/is back after/);
      console.log(`[measured] unreachable warning ${warnedAfterMs} ms after the kill`);
      // The worker said it once each way, not once per reconnect attempt.
      expect(lines.filter((l) => /lost Redis/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /is back after/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /ECONNREFUSED/.test(l)).length).toBeLessThanOrEqual(1);
    },
  );

  it(
    'shutdown() returns within its bound while Redis is gone, rejecting what it could not settle',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      await worker(server.address, 'gone');
      const executor = await new DistributedExecutor({ address: server.address }).start();
      const futures = executor.map(nap, [3000, 3000, 3000], [1, 2, 3]);
      await new Promise((r) => setTimeout(r, 500));
      await server.crash();
      const before = Date.now();
      await executor.shutdown();
      const tookMs = Date.now() - before;
      expect(tookMs).toBeLessThan(12_000);
      console.log(`[measured] shutdown() with Redis gone returned in ${tookMs} ms`);
      for (const result of await outcomes(futures)) {
        const error = (result as PromiseRejectedResult).reason as RedisLostError;
        expect(error).toBeInstanceOf(RedisLostError);
        expect(error.reason).toBe('unreachable');
        expect(error.message).toMatch(/stayed unreachable/);
      }
    },
  );

  it(
    'shutdown({ cancelPending: true }) returns at once while Redis is gone',
    { timeout: 30_000 },
    async () => {
      const server = await redis();
      await worker(server.address, 'gone2');
      const executor = await new DistributedExecutor({ address: server.address }).start();
      const futures = executor.map(nap, [3000, 3000], [1, 2]);
      await new Promise((r) => setTimeout(r, 300));
      await server.crash();
      const before = Date.now();
      await executor.shutdown({ cancelPending: true });
      const tookMs = Date.now() - before;
      expect(tookMs).toBeLessThan(6000);
      console.log(`[measured] cancelling shutdown() with Redis gone returned in ${tookMs} ms`);
      expect((await outcomes(futures)).every((r) => r.status === 'rejected')).toBe(true);
    },
  );

  it(
    "rejects every task when the local cluster's redis-server dies, and shuts down promptly",
    { timeout: 60_000 },
    async () => {
      const executor = await new DistributedExecutor({ workers: 2 }).start();
      cleanups.push(() => executor.shutdown({ cancelPending: true }));
      const port = executor.address!.split(':').pop()!;
      const info = spawnSync('redis-cli', ['-p', port, 'info', 'server'], { encoding: 'utf8' });
      const pid = Number(/process_id:(\d+)/.exec(info.stdout)?.[1]);
      expect(pid).toBeGreaterThan(0);
      const futures = executor.map(nap, Array<number>(6).fill(3000), [1, 2, 3, 4, 5, 6]);
      await new Promise((r) => setTimeout(r, 500));
      process.kill(pid, 'SIGKILL');
      const killed = Date.now();
      const results = await outcomes(futures);
      const rejectedAfterMs = Date.now() - killed;
      expect(rejectedAfterMs).toBeLessThan(10_000);
      for (const result of results) {
        const error = (result as PromiseRejectedResult).reason as RedisLostError;
        expect(error).toBeInstanceOf(RedisLostError);
        expect(error.reason).toBe('server-exited');
        expect(error.message).toMatch(/local cluster's redis-server was killed \(SIGKILL\)/);
      }
      // Later submits fail at once too, and shutdown does not wait on the dead server.
      await expect(executor.submit(add, 1, 1).result()).rejects.toThrow(RedisLostError);
      const before = Date.now();
      await executor.shutdown();
      const shutdownMs = Date.now() - before;
      expect(shutdownMs).toBeLessThan(8000);
      console.log(
        `[measured] local redis-server killed: rejected in ${rejectedAfterMs} ms, shutdown ${shutdownMs} ms`,
      );
    },
  );
});

/** `weft run` of the fault job (FAULT_TASKS marks of FAULT_MS each, recorded in `dir`). */
function runJob(address: string, dir: string, tasks: number, ms: number): ChildProcess {
  const child = spawn(process.execPath, [cli, 'run', job, '--address', address], {
    cwd: root,
    env: { ...process.env, FAULT_DIR: dir, FAULT_TASKS: String(tasks), FAULT_MS: String(ms) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('when a client goes away', () => {
  for (const how of ['SIGKILL', 'SIGINT'] as const) {
    it(
      `never starts the queued tasks of a client stopped by ${how} mid-map`,
      { timeout: 60_000 },
      async () => {
        const server = await redis();
        const { lines } = await worker(server.address, `w-${how}`, ['--concurrency', '2']);
        const dir = tempDir();
        // Tasks outlast the detection, so no slot frees before the worker knows.
        const child = runJob(server.address, dir, 30, 8000);
        await until(() => count(dir, 'start') === 2, 'two tasks to start', 30_000);
        child.kill(how);
        const code = await exited(child);
        const stoppedAt = Date.now();
        const startedAtStop = count(dir, 'start');
        if (how === 'SIGINT') expect(code).toBe(130);
        // The running tasks get their abort signal; nothing else starts.
        await until(
          () => lines.some((l) => /client \S+ (left|is gone)/.test(l)),
          'the worker to notice the client is gone',
          20_000,
        );
        const noticedMs = Date.now() - stoppedAt;
        // Give a worker time to (wrongly) take the next queued task.
        await new Promise((r) => setTimeout(r, 3000));
        expect(count(dir, 'start')).toBe(startedAtStop);
        expect(count(dir, 'start')).toBeLessThanOrEqual(3);
        // At most the running tasks could have completed; here they were aborted first.
        expect(count(dir, 'done')).toBe(0);
        // Its result stream is gone too.
        await until(
          () => server.cli('keys', 'weft:out:*').trim() === '',
          'the result stream to go',
        );
        console.log(`[measured] client ${how}: worker reacted after ${noticedMs} ms`);
      },
    );
  }
});

describe('Ctrl-C while Redis is gone', () => {
  it('ends weft run at once with 130', { timeout: 60_000 }, async () => {
    const server = await redis();
    await worker(server.address, 'ctrl-c');
    const dir = tempDir();
    const child = runJob(server.address, dir, 6, 5000);
    await until(() => count(dir, 'start') === 1, 'a task to start', 30_000);
    await server.crash();
    const before = Date.now();
    child.kill('SIGINT');
    expect(await exited(child)).toBe(130);
    const tookMs = Date.now() - before;
    expect(tookMs).toBeLessThan(5000);
    console.log(`[measured] Ctrl-C with Redis gone: weft run exited in ${tookMs} ms`);
  });
});

describe('a client the workers took for gone', () => {
  it(
    'fails its tasks with RedisLostError instead of waiting for them forever',
    { timeout: 30_000 },
    async () => {
      const server = await redis();
      const { lines } = await worker(server.address, 'mistaken');
      const executor = await client(server.address);
      const dir = tempDir();
      const future = executor.submit(mark, dir, 1, 20_000);
      await until(() => count(dir, 'start') === 1, 'the task to start');
      // What a long stall of the client's process looks like to workers: no heartbeat.
      const key = server.cli('--scan', '--pattern', 'weft:client:*').trim();
      expect(key).not.toBe('');
      server.cli('del', key);
      const before = Date.now();
      const error = (await future.result().catch((e: unknown) => e)) as RedisLostError;
      expect(error).toBeInstanceOf(RedisLostError);
      expect(error.reason).toBe('session-expired');
      expect(error.message).toMatch(/workers treated this client as gone/);
      expect(Date.now() - before).toBeLessThan(10_000);
      await until(() => lines.some((l) => /is gone/.test(l)), 'the worker to stop the task');
      expect(count(dir, 'done')).toBe(0);
    },
  );
});

describe('a worker that dies or freezes', () => {
  it(
    'runs the task of a SIGKILLed worker again elsewhere, with one result',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const a = await worker(server.address, 'killed-a');
      const b = await worker(server.address, 'killed-b');
      const byName = { 'killed-a': a, 'killed-b': b } as Record<string, typeof a>;
      const executor = await client(server.address);
      const dir = tempDir();
      let killedAt = 0;
      executor.events.on('started', (event) => {
        if (killedAt || !event.worker) return;
        byName[event.worker]!.child.kill('SIGKILL');
        killedAt = Date.now();
      });
      expect(await executor.submit(mark, dir, 3, 500)).toBe(3);
      console.log(`[measured] worker SIGKILLed: result ${Date.now() - killedAt} ms after the kill`);
      expect(count(dir, 'done')).toBe(1);
    },
  );

  it(
    'says in one line that it lost its lock and drops its result when the task ran elsewhere',
    { timeout: 60_000 },
    async () => {
      const server = await redis();
      const a = await worker(server.address, 'frozen-a');
      const b = await worker(server.address, 'frozen-b');
      const byName = { 'frozen-a': a, 'frozen-b': b } as Record<string, typeof a>;
      const executor = await client(server.address);
      const dir = tempDir();
      let frozen: (typeof a & { name: string }) | undefined;
      let stoppedAt = 0;
      executor.events.on('started', (event) => {
        if (frozen || !event.worker) return;
        frozen = { ...byName[event.worker]!, name: event.worker };
        frozen.child.kill('SIGSTOP');
        stoppedAt = Date.now();
      });
      const value = await executor.submit(mark, dir, 7, 2000);
      expect(value).toBe(7);
      console.log(
        `[measured] frozen worker: result from the other after ${Date.now() - stoppedAt} ms`,
      );
      // The other worker ran it; the frozen one may run it too once it wakes up.
      expect(count(dir, 'start')).toBeGreaterThanOrEqual(1);
      frozen!.child.kill('SIGCONT');
      await until(
        () => frozen!.lines.some((l) => /lost its lock/.test(l)),
        'the frozen worker to say it lost its lock',
      );
      await new Promise((r) => setTimeout(r, 1500));
      const said = frozen!.lines.filter((l) => /lock/i.test(l));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/run again elsewhere, so this worker's result of it was dropped/);
      expect(frozen!.lines.filter((l) => /Missing lock|could not renew|Error:/.test(l))).toEqual(
        [],
      );
    },
  );
});

describe('weft worker that cannot start', () => {
  it('exits 2 when Redis does not answer within its connect timeout', { timeout: 30_000 }, () => {
    const before = Date.now();
    const run = spawnSync(
      process.execPath,
      [cli, 'worker', '--address', 'redis://127.0.0.1:1', '--connect-timeout-ms', '1500'],
      { encoding: 'utf8', timeout: 25_000 },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/Could not reach Redis at redis:\/\/127\.0\.0\.1:1 within 1\.5 s/);
    expect(Date.now() - before).toBeLessThan(15_000);
  });

  it('exits 2 at once when Redis refuses the password', { timeout: 30_000 }, async () => {
    const server = await redis({ password: 'right-one' });
    for (const address of [
      server.address.replace('right-one', 'wrong-one'),
      `redis://127.0.0.1:${server.port}`,
    ]) {
      const before = Date.now();
      const run = spawnSync(process.execPath, [cli, 'worker', '--address', address], {
        encoding: 'utf8',
        timeout: 25_000,
      });
      const tookMs = Date.now() - before;
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/refused the login \((WRONGPASS|NOAUTH)/);
      expect(run.stderr).not.toMatch(/wrong-one/);
      expect(tookMs).toBeLessThan(5000);
    }
  });

  it('exits 2 on an unknown flag', { timeout: 30_000 }, () => {
    const run = spawnSync(process.execPath, [cli, 'worker', '--adress', 'redis://x'], {
      encoding: 'utf8',
      timeout: 25_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown option '--adress'/);
  });
});
