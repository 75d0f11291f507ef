/**
 * The two ways a big value avoids a copy on its way into Redis: a binary result is encoded
 * straight into shared memory (pool/encoded.ts), byte for byte what v8's serialize makes; and
 * ChunkedSet writes a value's chunks to the socket as they are, in order with the commands sent
 * before and after it on the same connection. Real redis-server.
 */
import { Redis } from 'ioredis';
import { deserialize, serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkedSet } from '../../dist/distributed/chunked-set.js';
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
