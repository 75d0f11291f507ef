/**
 * Values kept in the cluster's Redis, so that a big result travels once: its worker stores it,
 * a downstream task's worker fetches it straight from Redis, and the client fetches it only when
 * user code asks for the value.
 *
 * Keys: `P':val:<clientId>:<id>` (P' is the prefix without its hash tag, so on a Redis Cluster
 * values spread over the shards), `<id>` an attempt id for a result or `s<n>` for a scattered
 * value. The bytes are the value's v8 payload; with a secret they are prefixed by a 32-byte
 * HMAC over the key and the payload, so a value changed or moved in Redis is refused.
 *
 * A worker keeps a byte-bounded cache of the values it stored or fetched, as bytes: a task that
 * lands on the worker that made (or already fetched) its input pays no round trip, and requests
 * for a value already on its way share that fetch. Bytes, not decoded values, because the pool
 * worker that runs the task decodes its inputs itself (pool/encoded.ts): the worker's own event
 * loop, which renews BullMQ's job locks, never decodes or re-encodes a big value.
 */
import type { Cluster, Redis } from 'ioredis';
import { SignatureError, ValueLostError } from '../core/errors.js';
import type { RefMarker } from '../core/remote.js';
import type { Signer } from './signing.js';
import { ChunkedSet } from './chunked-set.js';
import { decode } from './wire.js';
import { shareBytes, shared } from '../pool/encoded.js';

/** Results this large or larger stay in Redis; smaller ones travel inline with their notice. */
export const storeThresholdBytes = 64 * 1024;
/** What a worker caches of stored values, by default. */
export const defaultCacheBytes = 256 * 1024 * 1024;

const macBytes = 32;

export class ValueStore {
  readonly #redis: Redis | Cluster;
  readonly #bare: string;
  readonly #signer: Signer | undefined;
  readonly #cacheBytes: number;
  readonly #share: boolean;
  /** Values' bytes (unsealed), least recently used first. */
  readonly #cache = new Map<string, Buffer>();
  #cached = 0;
  /** Fetches on their way, shared by everyone who asks for the same value meanwhile. */
  readonly #inflight = new Map<string, Promise<Buffer>>();
  /** Keys asked for in this turn of the event loop: fetched together. */
  #batch:
    | Map<string, { resolve: (b: Buffer | undefined) => void; reject: (e: unknown) => void }>
    | undefined;

  constructor(
    redis: Redis | Cluster,
    prefix: string,
    options: {
      signer?: Signer;
      cacheBytes?: number;
      /** Keep fetched bytes in shared memory, for a pool of worker threads (pool/encoded.ts). */
      share?: boolean;
    } = {},
  ) {
    this.#redis = redis;
    this.#bare = prefix.replace(/[{}]/g, '');
    this.#signer = options.signer;
    this.#cacheBytes = options.cacheBytes ?? defaultCacheBytes;
    this.#share = options.share === true;
  }

  /** The key of a value a client's attempt (or scatter) made. */
  key(clientId: string, id: number | string): string {
    return `${this.#bare}:val:${clientId}:${id}`;
  }

  /** The pattern of every value of one client (for cleanup). */
  pattern(clientId: string): string {
    return `${this.#bare}:val:${clientId}:*`;
  }

  /** Stores a value's `bytes` under `key` for at most `ttlSeconds`, and caches them. */
  async put(key: string, bytes: Buffer, ttlSeconds: number): Promise<void> {
    await this.#redis.sendCommand(new ChunkedSet(key, this.#seal(key, bytes), ttlSeconds));
    this.#remember(key, bytes);
  }

  /** The value stored under `marker`'s key, decoded (see `bytes`). */
  async get(marker: RefMarker): Promise<unknown> {
    return decode(await this.bytes(marker));
  }

  /**
   * The bytes of the value stored under `marker`'s key; rejects with `ValueLostError` when it is
   * gone and `SignatureError` when its seal does not match. Keys asked for in one turn share one
   * round trip. The bytes are shared with the cache: never change them.
   */
  bytes(marker: RefMarker): Promise<Buffer> {
    const key = marker['@weft/ref'];
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return Promise.resolve(hit);
    }
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#fetch(key).then((stored) => {
        if (stored === undefined) throw lost(marker);
        const opened = this.#open(marker, stored);
        const bytes = this.#share && opened.length >= shareBytes ? shared(opened) : opened;
        this.#remember(key, bytes);
        return bytes;
      });
      this.#inflight.set(key, pending);
      const done = (): boolean => this.#inflight.delete(key);
      pending.then(done, done);
    }
    return pending;
  }

  /** Forgets and deletes values (those a client no longer needs). */
  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#forget(key);
    if (keys.length === 0) return;
    // On a Redis Cluster the keys live on different shards: one DEL each.
    if ('nodes' in this.#redis) await Promise.all(keys.map((key) => this.#redis.del(key)));
    else await this.#redis.del(...keys);
  }

  // ---- cache and fetching -----------------------------------------------------------------

  /** The stored (sealed) bytes under `key`, or undefined; keys asked for in one turn go together. */
  #fetch(key: string): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.#batch) {
        this.#batch = new Map();
        queueMicrotask(() => void this.#fetchBatch());
      }
      this.#batch.set(key, { resolve, reject });
    });
  }

  async #fetchBatch(): Promise<void> {
    const batch = this.#batch!;
    this.#batch = undefined;
    const keys = [...batch.keys()];
    try {
      let replies: (Buffer | null)[];
      if ('nodes' in this.#redis || keys.length === 1) {
        const redis = this.#redis;
        replies = await Promise.all(keys.map((key) => redis.getBuffer(key)));
      } else {
        const pipeline = this.#redis.pipeline();
        for (const key of keys) pipeline.getBuffer(key);
        const results = (await pipeline.exec()) ?? [];
        replies = results.map(([error, value]) => {
          if (error) throw error;
          return value as Buffer | null;
        });
      }
      keys.forEach((key, i) => batch.get(key)!.resolve(replies[i] ?? undefined));
    } catch (error) {
      for (const waiter of batch.values()) waiter.reject(error);
    }
  }

  /** Caches a value's bytes (least recently used values go first). */
  #remember(key: string, bytes: Buffer): void {
    if (bytes.length > this.#cacheBytes) return;
    this.#forget(key);
    this.#cache.set(key, bytes);
    this.#cached += bytes.length;
    for (const [old, entry] of this.#cache) {
      if (this.#cached <= this.#cacheBytes) break;
      this.#cache.delete(old);
      this.#cached -= entry.length;
    }
  }

  #forget(key: string): void {
    const old = this.#cache.get(key);
    if (!old) return;
    this.#cache.delete(key);
    this.#cached -= old.length;
  }

  // ---- seals ------------------------------------------------------------------------------

  /** What Redis stores for a value: its seal (with a secret) and its bytes, as chunks. */
  #seal(key: string, bytes: Buffer): Buffer[] {
    if (!this.#signer) return [bytes];
    return [Buffer.from(this.#signer.sign(['weft-value-v1', key, bytes]), 'base64'), bytes];
  }

  #open(marker: RefMarker, stored: Buffer): Buffer {
    const signer = this.#signer;
    if (!signer) return stored;
    const key = marker['@weft/ref'];
    const body = stored.subarray(macBytes);
    const mac = stored.subarray(0, macBytes).toString('base64');
    if (stored.length < macBytes || !signer.verify(['weft-value-v1', key, body], mac)) {
      throw new SignatureError(
        `The stored value of task ${marker.task} (Redis key ${key}) is not signed with any of this process's secrets, so it was refused. Either it was written by a worker with another secret (give client and workers the same one), or it was changed or moved in Redis.`,
      );
    }
    return body;
  }
}

/** The error for a value that is gone from Redis. */
export function lost(marker: RefMarker): ValueLostError {
  return new ValueLostError(
    `The value of task ${marker.task} (${marker.bytes} bytes, Redis key ${marker['@weft/ref']}) is gone from the cluster's Redis: evicted under maxmemory, lost when Redis restarted without persistence, or deleted when its client shut down. Give Redis enough memory (or persistence), and await values before shutdown().`,
    marker.task,
  );
}
