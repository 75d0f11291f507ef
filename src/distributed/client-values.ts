/**
 * The values a client keeps in Redis (values.ts has the keys and the format): what it scatters,
 * and results big enough that workers stored them instead of sending them. Each is deleted once
 * nothing can use it any more (no future, no pending task holds its `RemoteValue`), and every one
 * left is deleted when the client closes.
 */
import type { Redis } from 'ioredis';
import { SerializationError } from '../core/errors.js';
import { RemoteValue } from '../core/remote.js';
import type { Signer } from './signing.js';
import { ValueStore, lost } from './values.js';
import { decode, encode, maxPayloadBytes, retentionSeconds, type StoredRef } from './wire.js';

export class ClientValues {
  readonly #redis: Redis;
  readonly #clientId: string;
  readonly #store: ValueStore;
  /** Closing: values can no longer be read, and nothing is deleted one by one any more. */
  #closing = false;
  #scattered = 0;
  /** Scattered values still being written: jobs that may use them wait for these. */
  readonly #storing = new Set<Promise<void>>();
  /** Keys of this client's stored values not yet deleted. */
  readonly #storedKeys = new Set<string>();
  /** Deletes a stored value once nothing can use it: no future, no pending task holds its reference. */
  readonly #unreachable = new FinalizationRegistry<string>((key) => this.#release(key));
  #releasing: string[] = [];

  constructor(redis: Redis, prefix: string, clientId: string, signer: Signer | undefined) {
    this.#redis = redis;
    this.#clientId = clientId;
    // The client reads a value once (its RemoteValue keeps it): no byte cache here.
    this.#store = new ValueStore(redis, prefix, { signer, cacheBytes: 0 });
  }

  /** `scatter()`: writes `value` to Redis and returns the reference that stands for it. */
  store(value: unknown, key: string): RemoteValue {
    let bytes: Buffer;
    try {
      bytes = encode(value);
    } catch (cause) {
      throw new SerializationError(
        `scatter(): the value cannot be serialized for the cluster (${(cause as Error).message}).`,
        'value',
        { cause },
      );
    }
    if (bytes.length > maxPayloadBytes)
      throw new SerializationError(
        `scatter(): the value is ${bytes.length} bytes once serialized, over the cluster's limit of ${maxPayloadBytes} bytes (Redis holds every value in memory). Pass a reference (a path or URL) instead of the data.`,
        'value',
      );
    const storeKey = this.#store.key(this.#clientId, `s${++this.#scattered}`);
    const writing = this.#store.put(storeKey, bytes, retentionSeconds).catch(() => {
      // Its readers report the value as lost (ValueLostError), naming the scatter.
    });
    this.#storing.add(writing);
    void writing.then(() => this.#storing.delete(writing));
    return this.remote({ k: storeKey, n: bytes.length }, key);
  }

  /**
   * What to await before sending a job that may name a scattered value: a promise that resolves
   * once every one is in Redis, or undefined when none is being written.
   */
  written(): Promise<unknown> | undefined {
    return this.#storing.size > 0 ? Promise.all(this.#storing) : undefined;
  }

  /**
   * A reference to a value this client's work stored, deleted once unreachable; `worker` made it
   * (tasks that need it are sent there while it lives, see sender.ts).
   */
  remote(ref: StoredRef, task: string, worker?: string): RemoteValue {
    const load = async (): Promise<unknown> => {
      if (this.#closing || !this.#storedKeys.has(ref.k)) throw lost(remote);
      return this.#store.get(remote);
    };
    const remote: RemoteValue = new RemoteValue(ref.k, task, ref.n, load, worker);
    this.#storedKeys.add(ref.k);
    this.#unreachable.register(remote, ref.k);
    return remote;
  }

  /**
   * A worker stored the result of an attempt nobody waits for any more (cancelled while it ran):
   * deletes it, unless it is a value in use (a second report of an attempt that ran twice names
   * the key the first one did).
   */
  async drop(payload: Buffer): Promise<void> {
    const ref = decode(payload) as StoredRef;
    if (
      typeof ref?.k === 'string' &&
      !this.#storedKeys.has(ref.k) &&
      ref.k.startsWith(this.#store.pattern(this.#clientId).slice(0, -1))
    )
      await this.#store.delete([ref.k]).catch(() => undefined);
  }

  /** From now on values cannot be read, and unreachable ones are left to `deleteAll`. */
  close(): void {
    this.#closing = true;
  }

  /** Deletes every value this client's work stored: those it knows, and any it never heard of. */
  async deleteAll(): Promise<void> {
    const known = [...this.#storedKeys];
    this.#storedKeys.clear();
    await this.#store.delete(known);
    // Results of attempts cancelled while they ran are stored without the client hearing of them.
    const redis = this.#redis;
    if ('nodes' in redis) return; // each shard would need its own SCAN; their TTL cleans them up
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(
        cursor,
        'MATCH',
        this.#store.pattern(this.#clientId),
        'COUNT',
        1000,
      );
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
  }

  #release(key: string): void {
    if (!this.#storedKeys.delete(key) || this.#closing) return;
    this.#releasing.push(key);
    if (this.#releasing.length > 1) return;
    setImmediate(() => {
      const keys = this.#releasing;
      this.#releasing = [];
      if (!this.#closing) void this.#store.delete(keys).catch(() => undefined);
    });
  }
}
