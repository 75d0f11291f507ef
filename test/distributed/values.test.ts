/**
 * The two ways a big value avoids a copy on its way into Redis: a binary result is encoded
 * straight into shared memory (pool/encoded.ts), byte for byte what v8's serialize makes; and
 * ChunkedSet writes a value's chunks to the socket as they are, in order with the commands sent
 * before and after it on the same connection; and the allocator settings given to the processes
 * that move large values (allocator.ts). Real redis-server.
 */
import { Redis } from 'ioredis';
import { readFileSync, readdirSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedExecutor } from 'weftjs';
import {
  allocatorHint,
  redisAllocatorEnv,
  workerAllocatorEnv,
} from '../../dist/distributed/allocator.js';
import { ChunkedSet } from '../../dist/distributed/chunked-set.js';
import { startRedisServer } from '../../dist/distributed/redis-server.js';
import { encodeResult, shareBytes } from '../../dist/pool/encoded.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('encodeResult', () => {
  const big = shareBytes + 13;
  const views: [string, ArrayBufferView][] = [
    ['Uint8Array', new Uint8Array(big).map((_, i) => i % 251)],
    ['Buffer', Buffer.alloc(big, 'weft')],
    ['Float64Array', new Float64Array(big / 8 + 1).map((_, i) => i / 3)],
    ['an offset Int16Array', new Int16Array(big).fill(-7).subarray(5, big - 3)],
    ['DataView', new DataView(new Uint8Array(big).fill(9).buffer, 3, big - 10)],
  ];
  for (const [label, view] of views) {
    it(`encodes a large ${label} into shared memory, exactly as serialize does`, () => {
      const bytes = encodeResult(view, true);
      expect(bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(Buffer.compare(Buffer.from(bytes), serialize(view))).toBe(0);
      const back = deserialize(Buffer.from(bytes)) as ArrayBufferView;
      expect(back.constructor).toBe(view.constructor);
      expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength)).toEqual(
        Buffer.from(view.buffer, view.byteOffset, view.byteLength),
      );
    });
  }

  it('leaves small values and unshared results in ordinary memory', () => {
    expect(encodeResult(new Uint8Array(16), true).buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(encodeResult(new Uint8Array(big), false).buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(encodeResult({ a: [1, 'two'] }, true)).toEqual(serialize({ a: [1, 'two'] }));
  });

  it('treats a subclassed view as serialize does, and throws what serialize throws', () => {
    class Tagged extends Uint8Array {}
    const tagged = new Tagged(big).fill(3);
    expect(Buffer.compare(Buffer.from(encodeResult(tagged, true)), serialize(tagged))).toBe(0);
    expect(() => encodeResult({ f: () => 1 }, true)).toThrow(/could not be cloned/);
  });
});

describe('ChunkedSet', () => {
  let server: TestRedis;
  let redis: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  }, 30_000);
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  }, 30_000);

  it('stores the chunks as one value with a time-to-live', { timeout: 30_000 }, async () => {
    const head = Buffer.from('seal');
    const body = Buffer.from(new SharedArrayBuffer(3 * 1024 * 1024)).fill(7);
    expect(await redis.sendCommand(new ChunkedSet('v:1', [head, Buffer.alloc(0), body], 60))).toBe(
      'OK',
    );
    const stored = await redis.getBuffer('v:1');
    expect(stored?.length).toBe(head.length + body.length);
    expect(Buffer.compare(stored!, Buffer.concat([head, body]))).toBe(0);
    const ttl = await redis.ttl('v:1');
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('keeps its place among commands sent around it, unawaited', { timeout: 30_000 }, async () => {
    const value = Buffer.alloc(2 * 1024 * 1024, 1);
    const replies = await Promise.all([
      redis.set('v:order', 'before'),
      redis.sendCommand(new ChunkedSet('v:order', [value], 60)),
      redis.strlen('v:order'),
      redis.pipeline().append('v:order', 'x').strlen('v:order').exec(),
      redis.sendCommand(new ChunkedSet('v:order', [Buffer.from('after')], 60)),
      redis.get('v:order'),
    ]);
    expect(replies[1]).toBe('OK');
    expect(replies[2]).toBe(value.length);
    expect(replies[3]).toEqual([
      [null, value.length + 1],
      [null, value.length + 1],
    ]);
    expect(replies[5]).toBe('after');
  });
});

describe('allocator settings for processes that move large values', () => {
  it('gives workers glibc tunables, keeping any the environment sets', () => {
    const fresh = workerAllocatorEnv({}).GLIBC_TUNABLES.split(':');
    expect(fresh).toContain('glibc.malloc.hugetlb=1');
    expect(fresh).toContain(`glibc.malloc.mmap_threshold=${32 * 1024 * 1024}`);
    const mixed = workerAllocatorEnv({
      GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=1024:glibc.cpu.x86_rep_movsb_threshold=4096',
    }).GLIBC_TUNABLES.split(':');
    expect(mixed.filter((t) => t.startsWith('glibc.malloc.mmap_threshold='))).toEqual([
      'glibc.malloc.mmap_threshold=1024',
    ]);
    expect(mixed).toContain('glibc.cpu.x86_rep_movsb_threshold=4096');
    expect(mixed).toContain('glibc.malloc.hugetlb=1');
  });

  it('hints at them, on Linux, to a worker started without them', () => {
    const hint = allocatorHint({}, 'linux');
    expect(hint).toMatch(/default allocator settings/);
    expect(hint).toContain(`GLIBC_TUNABLES=${workerAllocatorEnv({}).GLIBC_TUNABLES}`);
    expect(allocatorHint(workerAllocatorEnv({}), 'linux')).toBeUndefined();
    expect(allocatorHint({}, 'darwin')).toBeUndefined();
  });

  it('gives redis-server jemalloc settings unless the environment has its own', () => {
    expect(redisAllocatorEnv({}).MALLOC_CONF).toMatch(/thp:always/);
    expect(redisAllocatorEnv({ MALLOC_CONF: 'narenas:1' })).toEqual({
      MALLOC_CONF: 'narenas:1',
      JE_MALLOC_CONF: 'narenas:1',
    });
  });

  it(
    "starts weft's redis-server with them (jemalloc reports its options)",
    { timeout: 30_000 },
    async () => {
      const server = await startRedisServer();
      const redis = new Redis(server.port, '127.0.0.1');
      try {
        const stats = String(await redis.call('memory', 'malloc-stats'));
        expect(stats).toMatch(/opt\.thp: "always"/);
        expect(stats).toMatch(/opt\.dirty_decay_ms: -1/);
      } finally {
        redis.disconnect();
        await server.stop();
      }
    },
  );

  it('starts the worker processes of a local cluster with them', { timeout: 60_000 }, async () => {
    const ex = await new DistributedExecutor({ workers: 1, localProcesses: true }).start();
    try {
      // This process's children that are cluster workers (other test files start their own).
      const parentOf = (pid: string): number =>
        Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      const environs = readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .map((pid) => {
          try {
            if (parentOf(pid) !== process.pid) return [];
            return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
          } catch {
            return []; // gone, or not ours to read
          }
        })
        .filter((environ) => environ.some((v) => v.startsWith('WEFT_CLUSTER_WORKER=')));
      expect(environs.length).toBeGreaterThanOrEqual(1);
      // glibc parses GLIBC_TUNABLES in place, cutting the original string at each ':'.
      for (const environ of environs)
        for (const tunable of workerAllocatorEnv().GLIBC_TUNABLES.split(':'))
          expect(environ.join('\0')).toContain(tunable);
    } finally {
      await ex.shutdown();
    }
  });
});
