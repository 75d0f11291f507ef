/**
 * Data on a cluster: big results stay in Redis and go worker to worker, the client reads a value
 * only when asked, scattered values are fetched once per worker, and stored values are deleted
 * when nothing needs them. Real redis-server, real worker processes; the client talks to Redis
 * through a byte-counting proxy, so "the client never read it" is measured, not assumed.
 */
import type { ChildProcess } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DistributedExecutor,
  LocalExecutor,
  LocalPoolExecutor,
  SignatureError,
  ValueLostError,
  unmapped,
  type Executor,
} from 'weftjs';
import { startWorkerProcess, stopWorker } from '../helpers/cluster-worker.js';
import { startCountingProxy } from '../helpers/proxy.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { bump, bytes, nap, summary } from './fixtures.js';

const MiB = 1024 * 1024;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Cluster {
  redis: TestRedis;
  workers: ChildProcess[];
  /** Bytes Redis sent to the client (through the proxy). */
  clientRead: () => number;
  executor: DistributedExecutor;
  /** Redis's own count of bytes it sent to everyone. */
  netOutput: () => number;
  /** Keys of stored values in Redis now. */
  valueKeys: () => string[];
}

async function cluster(
  options: { workers?: number; secret?: string; cacheBytes?: number } = {},
): Promise<Cluster> {
  const redis = await startRedis();
  cleanups.push(() => redis.stop(true));
  const workers: ChildProcess[] = [];
  for (let i = 0; i < (options.workers ?? 2); i++) {
    const worker = await startWorkerProcess({
      address: redis.address,
      name: `w${i}`,
      ...(options.cacheBytes !== undefined ? { cacheBytes: options.cacheBytes } : {}),
      ...(options.secret ? { secret: [options.secret] } : {}),
    });
    workers.push(worker);
    cleanups.push(() => stopWorker(worker));
  }
  const proxy = await startCountingProxy(redis.port);
  cleanups.push(() => proxy.close());
  const executor = await new DistributedExecutor({
    address: `redis://127.0.0.1:${proxy.port}`,
    ...(options.secret ? { secret: options.secret } : {}),
  }).start();
  cleanups.push(() => executor.shutdown({ cancelPending: true }));
  return {
    redis,
    workers,
    clientRead: () => proxy.toClients,
    executor,
    netOutput: () => Number(/total_net_output_bytes:(\d+)/.exec(redis.cli('info', 'stats'))![1]),
    valueKeys: () =>
      redis
        .cli('--scan', '--pattern', '*:val:*')
        .split('\n')
        .filter((line) => line.trim() !== ''),
  };
}

describe('DistributedExecutor: data stays in the cluster', () => {
  it(
    'passes 8 MiB values down a chain without the client reading them, one read per consumer',
    { timeout: 60_000 },
    async () => {
      const { executor, clientRead, netOutput } = await cluster();
      const readBefore = clientRead();
      const outBefore = netOutput();
      const first = executor.submit(bytes, 8 * MiB, 1);
      const second = executor.submit(bump, first);
      const third = executor.submit(bump, second);
      const last = await executor.submit(summary, third, 7);
      expect(last).toEqual([8 * MiB, 3, 7]);
      // Three 8 MiB values were made and two were consumed; the client read none of them.
      const clientBytes = clientRead() - readBefore;
      expect(clientBytes).toBeLessThan(1 * MiB);
      // Redis sent each consumed value at most once (a consumer on the producing worker reads
      // it from that worker's cache): about 3 x 8 MiB, never the 6 x 8 MiB of a round trip
      // through the client.
      const served = netOutput() - outBefore;
      expect(served).toBeLessThan(3 * 8 * MiB + 2 * MiB);
      // Asked for, a value comes to the client: once.
      const value = await second;
      expect(value).toBeInstanceOf(Uint8Array);
      expect(value[0]).toBe(2);
      expect(clientRead() - readBefore).toBeGreaterThan(8 * MiB);
      expect(clientRead() - readBefore).toBeLessThan(9 * MiB);
    },
  );

  it(
    'fetches a scattered 50 MiB value about once per worker for 200 tasks',
    { timeout: 90_000 },
    async () => {
      const { executor, netOutput, clientRead } = await cluster();
      const data = new Uint8Array(50 * MiB).fill(9);
      const outBefore = netOutput();
      const readBefore = clientRead();
      const scattered = executor.scatter(data);
      expect(scattered.status).toBe('finished');
      const results = await executor.wait(
        executor.map(
          summary,
          unmapped(scattered),
          Array.from({ length: 200 }, (_, i) => i),
        ),
      );
      expect(results).toHaveLength(200);
      expect(results[199]).toEqual([50 * MiB, 9, 199]);
      // Two workers, each fetching once: about 100 MiB; 200 copies would be 10 GB.
      const served = netOutput() - outBefore;
      expect(served).toBeGreaterThan(50 * MiB);
      expect(served).toBeLessThan(2 * 50 * MiB + 5 * MiB);
      expect(clientRead() - readBefore).toBeLessThan(1 * MiB);
    },
  );

  it(
    'keeps Redis memory bounded over a 500-step pipeline whose client keeps only the last future',
    { timeout: 120_000 },
    async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const { executor, valueKeys } = await cluster();
      let future = executor.submit(bytes, 100 * 1024, 0);
      for (let i = 0; i < 499; i++) future = executor.submit(bump, future);
      let most = 0;
      let done = false;
      const final = executor.submit(summary, future);
      future = undefined as never;
      void final.finally(() => (done = true));
      while (!done) {
        gc();
        await new Promise((r) => setTimeout(r, 100));
        most = Math.max(most, valueKeys().length);
      }
      expect(await final).toEqual([100 * 1024, 499 % 256, 0]);
      // Without deletion all 500 would stay until shutdown.
      expect(most).toBeLessThan(60);
    },
  );

  it(
    'fails the consumers of a deleted value, and its own future, with ValueLostError naming its task',
    { timeout: 60_000 },
    async () => {
      // Without a cache, every consumer reads the value from Redis.
      const { executor, redis, valueKeys } = await cluster({ cacheBytes: 0 });
      const big = executor.submit(bytes, 1 * MiB, 5);
      const key = big.key;
      await executor.submit(summary, big); // big finished and stored
      const stored = valueKeys();
      expect(stored).toHaveLength(1);
      redis.cli('del', stored[0]!);
      const error = await executor.submit(summary, big).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValueLostError);
      expect((error as ValueLostError).task).toBe(key);
      expect((error as Error).message).toContain(key);
      expect((error as Error).message).toMatch(/gone from the cluster's Redis/);
      await expect(big.result()).rejects.toBeInstanceOf(ValueLostError);
    },
  );

  it(
    'sends a task to the worker that made its input, which serves it without asking Redis',
    { timeout: 60_000 },
    async () => {
      const { executor, netOutput } = await cluster();
      const made = Array.from({ length: 8 }, (_, i) => executor.submit(bytes, 256 * 1024, i));
      await executor.wait(made);
      const before = netOutput();
      const used = made.map((m, i) => executor.submit(summary, m, i));
      expect(await executor.wait(used)).toEqual(made.map((_, i) => [256 * 1024, i, i]));
      // Every input was at hand where its consumer ran: Redis served no value (2 MiB in all).
      expect(netOutput() - before).toBeLessThan(256 * 1024);
      for (let i = 0; i < made.length; i++) {
        const maker = (await executor.explain(made[i]!)).attempts[0]?.worker;
        const user = (await executor.explain(used[i]!)).attempts[0]?.worker;
        expect(maker).toMatch(/^w[01]$/);
        expect(user).toBe(maker);
      }
    },
  );

  it(
    'runs a task sent to the worker that made its input elsewhere when that worker dies',
    { timeout: 60_000 },
    async () => {
      const { executor, workers } = await cluster();
      const made = executor.submit(bytes, 256 * 1024, 7);
      await made;
      const maker = (await executor.explain(made)).attempts[0]!.worker!;
      // Sent to the maker's own queue once `gate` is done, after the maker was killed (its
      // registry entry still looks alive for a while): the client must move it when it goes.
      const gate = executor.submit(nap, 1000, 0);
      const used = executor.submit(summary, made, gate);
      await stopWorker(workers[Number(maker.slice(1))]!);
      expect(await used).toEqual([256 * 1024, 7, 0]);
      expect((await executor.explain(used)).attempts.at(-1)?.worker).not.toBe(maker);
    },
  );

  it('leaves no key of the client behind after shutdown', { timeout: 60_000 }, async () => {
    const { executor, redis, valueKeys } = await cluster();
    const kept = executor.submit(bytes, 1 * MiB, 1);
    const scattered = executor.scatter(new Uint8Array(2 * MiB));
    await executor.wait([executor.submit(summary, kept), executor.submit(summary, scattered)]);
    expect(valueKeys().length).toBe(2);
    await executor.shutdown();
    expect(valueKeys()).toEqual([]);
    expect(redis.cli('--scan', '--pattern', `*${'out'}:*`).trim()).toBe('');
    // A value asked for after shutdown says why it is gone.
    await expect(kept.result()).rejects.toThrow(/await values before shutdown/);
  });

  it(
    'refuses a stored value changed in Redis when the cluster has a secret',
    { timeout: 60_000 },
    async () => {
      const { executor, redis, valueKeys } = await cluster({
        workers: 1,
        secret: 'data-test-secret',
      });
      const big = executor.submit(bytes, 1 * MiB, 5);
      expect(await executor.submit(summary, big)).toEqual([MiB, 5, 0]);
      const [key] = valueKeys();
      // Rewrite the stored value with other bytes (a seal that cannot match).
      redis.cli('set', key!, 'x'.repeat(100));
      const error = await big.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SignatureError);
      expect((error as Error).message).toContain(big.key);
    },
  );
});

describe('scatter on local executors', () => {
  const executors: [string, () => Executor][] = [
    ['LocalExecutor', () => new LocalExecutor()],
    ['threads', () => new LocalPoolExecutor({ scheduler: 'threads', workers: 2 })],
    ['processes', () => new LocalPoolExecutor({ scheduler: 'processes', workers: 2 })],
  ];
  for (const [label, make] of executors) {
    it(`${label}: returns a finished future holding the value`, { timeout: 30_000 }, async () => {
      await make().start(async (executor) => {
        const value = { rows: [1, 2, 3] };
        const scattered = executor.scatter(value);
        expect(scattered.status).toBe('finished');
        expect(await scattered).toEqual(value);
        const sizes = await executor.wait(
          executor.map(
            (v: { rows: number[] }, i: number) => v.rows.length + i,
            unmapped(scattered),
            [0, 1],
          ),
        );
        expect(sizes).toEqual([3, 4]);
        // A pool's workers cannot receive a function; the caller's realm can.
        if (label !== 'LocalExecutor') expect(() => executor.scatter(() => 1)).toThrow(/function/);
      });
    });
  }
});
