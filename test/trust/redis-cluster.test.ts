/**
 * A 3-master Redis Cluster (real redis-servers, `redis-cli --cluster create`): the conformance
 * suite runs there with signed jobs; the prefix is hash-tagged so that BullMQ's scripts find
 * each queue's keys in one slot, while big argument payloads spread over the shards.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DistributedExecutor, startClusterWorker, type ClusterWorkerHandle } from 'weftjs';
import { conformance } from '../conformance/suite.js';
import { startRedisCluster, type SecureRedis } from '../helpers/secure-redis.js';
import { double } from './fixtures.js';

const secret = 'cluster-test-secret';
let cluster: SecureRedis;
const workers: ClusterWorkerHandle[] = [];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  for (const [prefix, name] of [
    ['weft', 'c-1'],
    ['weft', 'c-2'],
    ['single', 'c-single'],
  ] as const)
    workers.push(
      await startClusterWorker({ address: cluster.address, prefix, name, secret: [secret] }),
    );
}, 90_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await cluster?.stop();
}, 60_000);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

conformance(
  'DistributedExecutor (Redis Cluster, signed)',
  () => new DistributedExecutor({ address: cluster.address, secret }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new DistributedExecutor({ address: cluster.address, prefix: 'single', secret }),
  },
);

/** Keys matching `pattern` on each master, by port. */
function keysPerNode(pattern: string): number[] {
  return cluster.ports.map(
    (port) =>
      spawnSync('redis-cli', ['-p', String(port), '--scan', '--pattern', pattern], {
        encoding: 'utf8',
      })
        .stdout.split('\n')
        .filter(Boolean).length,
  );
}

describe('DistributedExecutor on a Redis Cluster', () => {
  it('hash-tags the prefix: every queue key of a prefix lives in one slot', () => {
    const slots = new Set(
      cluster.ports.flatMap((port) =>
        spawnSync('redis-cli', ['-p', String(port), '--scan', '--pattern', '{weft}:*'], {
          encoding: 'utf8',
        })
          .stdout.split('\n')
          .filter(Boolean)
          .map((key) => cluster.cli('cluster', 'keyslot', key).trim()),
      ),
    );
    expect(slots.size).toBe(1);
  });

  it('spreads stored argument payloads over the shards', { timeout: 60_000 }, async () => {
    // No worker serves this prefix yet: the payloads wait in Redis where the test can see them.
    const ex = await new DistributedExecutor({
      address: cluster.address,
      prefix: 'spread',
      secret,
    }).start();
    cleanups.push(() => ex.shutdown({ cancelPending: true }));
    // One job each (submits in separate turns are not batched), each payload in its own key.
    const futures = [];
    for (let i = 0; i < 24; i++) {
      futures.push(
        ex.submit((a: Float64Array, n: number) => a.length + n, new Float64Array(4096), i),
      );
      await new Promise((r) => setImmediate(r));
    }
    await expect
      .poll(() => keysPerNode('spread:arg:*').reduce((a, b) => a + b, 0), { timeout: 15_000 })
      .toBeGreaterThan(1);
    const perNode = keysPerNode('spread:arg:*');
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    const worker = await startClusterWorker({
      address: cluster.address,
      prefix: 'spread',
      name: 'spread-1',
      secret: [secret],
    });
    cleanups.push(() => worker.close());
    expect(await ex.wait(futures)).toEqual(Array.from({ length: 24 }, (_, i) => 4096 + i));
    expect(await ex.submit(double, 2)).toBe(4);
  });

  it(
    'keeps big results and scattered values on the shards, passes them worker to worker and deletes them at shutdown',
    { timeout: 60_000 },
    async () => {
      const ex = await new DistributedExecutor({ address: cluster.address, secret }).start();
      cleanups.push(() => ex.shutdown({ cancelPending: true }));
      const scattered = ex.scatter(new Float64Array(16_384).fill(2));
      const made = Array.from({ length: 12 }, (_, i) =>
        ex.submit((n: number) => new Float64Array(16_384).fill(n), i),
      );
      const sums = made.map((m) =>
        ex.submit(
          (a: Float64Array, b: Float64Array) => a.reduce((x, y) => x + y, 0) + b[0]!,
          m,
          scattered,
        ),
      );
      expect(await ex.wait(sums)).toEqual(Array.from({ length: 12 }, (_, i) => i * 16_384 + 2));
      // 13 values of 128 KiB, none inside the prefix's hash tag: spread over the masters.
      const perNode = keysPerNode('weft:val:*');
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(13);
      expect(perNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
      expect(((await made[3]) as Float64Array)[0]).toBe(3);
      await ex.shutdown();
      expect(keysPerNode('weft:val:*')).toEqual([0, 0, 0]);
    },
  );
});
