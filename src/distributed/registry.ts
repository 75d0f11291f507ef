/**
 * The cluster's worker registry, `P:workers` in wire.ts: a hash of worker name -> JSON
 * `WorkerInfo`. Each worker writes its own entry every `workerHeartbeatMs` (`beat`) and deletes
 * it when it leaves (`leave`); clients, the dashboard's watcher and `explain` read it (`read`).
 * One liveness rule for all of them: a worker is live while its last heartbeat is younger than
 * `deadAfterMs`. Each reader that reports workers joining and leaving keeps its own `Registry`,
 * whose `changes` diffs one read against the one before.
 *
 * The dashboard's flag `P:watch` rides along in the same round trip: a worker's beat and a
 * client's read ask whether it exists (task events are sent only then), the watcher's read sets it.
 */
import type { Redis } from 'ioredis';
import type { WorkerEvent } from '../core/events.js';
import type { WorkerInfo } from './wire.js';

/** A worker writes its entry this often (milliseconds). */
export const workerHeartbeatMs = 2000;
/** A worker whose last heartbeat is this old (milliseconds) is dead. */
export const deadAfterMs = 10_000;
/** A dead worker's entry (it was killed, no goodbye) is deleted after this long (milliseconds). */
export const forgetAfterMs = 60_000;

/** What one read of the registry found. */
export interface RegistrySnapshot {
  /** Epoch ms of the read; liveness is judged against it. */
  readonly now: number;
  /** Every entry, live or dead. */
  readonly all: WorkerInfo[];
  /** The entries whose heartbeat is younger than `deadAfterMs`. */
  readonly live: WorkerInfo[];
  /** Whether a dashboard watches (`P:watch` exists); false when the read did not ask. */
  readonly watched: boolean;
}

/** How a read treats the dashboard flag: ask whether it exists, or set it for `forMs`. */
export type WatchFlag =
  { key: string; mode: 'check' } | { key: string; mode: 'mark'; forMs: number };

export class Registry {
  readonly #redis: Redis;
  readonly #key: string;
  /** Names live at the last `changes` call. */
  #seen = new Set<string>();

  /** `workersKey`: `keys(prefix).workers`. */
  constructor(redis: Redis, workersKey: string) {
    this.#redis = redis;
    this.#key = workersKey;
  }

  /** True while `info`'s last heartbeat is younger than `deadAfterMs` at `now` (epoch ms). */
  static isLive(info: WorkerInfo, now: number): boolean {
    return now - info.seen < deadAfterMs;
  }

  /**
   * Writes this worker's entry (its `seen` is the heartbeat) and, in the same round trip, tells
   * whether a dashboard watches (`watchKey` exists).
   */
  async beat(info: WorkerInfo, watchKey: string): Promise<boolean> {
    const [, watched] =
      (await this.#redis
        .multi()
        .hset(this.#key, info.name, JSON.stringify(info))
        .exists(watchKey)
        .exec()) ?? [];
    return watched?.[1] === 1;
  }

  /** Deletes a worker's entry (it leaves). */
  async leave(name: string): Promise<void> {
    await this.#redis.hdel(this.#key, name);
  }

  /** Reads every entry, and handles the dashboard flag as `watch` says (one round trip). */
  async read(watch?: WatchFlag): Promise<RegistrySnapshot> {
    let raw: Record<string, string>;
    let watched = false;
    if (!watch) raw = await this.#redis.hgetall(this.#key);
    else {
      const multi = this.#redis.multi().hgetall(this.#key);
      if (watch.mode === 'check') multi.exists(watch.key);
      else multi.set(watch.key, '1', 'PX', watch.forMs);
      const [[, entries], [, flag]] = ((await multi.exec()) ?? []) as [
        [unknown, Record<string, string>],
        [unknown, unknown],
      ];
      raw = entries;
      watched = watch.mode === 'mark' || flag === 1;
    }
    const now = Date.now();
    const all = Object.values(raw).map((v) => JSON.parse(v) as WorkerInfo);
    return { now, all, live: all.filter((w) => Registry.isLive(w, now)), watched };
  }

  /** Deletes the entries silent for over `forgetAfterMs` (workers killed without a goodbye). */
  forgetDead(snapshot: RegistrySnapshot): void {
    const dead = snapshot.all
      .filter((w) => snapshot.now - w.seen > forgetAfterMs)
      .map((w) => w.name);
    if (dead.length > 0) void this.#redis.hdel(this.#key, ...dead).catch(() => undefined);
  }

  /** The workers that joined and left since the last call, as worker events. */
  changes(snapshot: RegistrySnapshot): WorkerEvent[] {
    const { now, live } = snapshot;
    const events: WorkerEvent[] = [];
    const names = new Set(live.map((w) => w.name));
    for (const w of live) {
      if (!this.#seen.has(w.name))
        events.push({
          type: 'joined',
          worker: w.name,
          time: now,
          pid: w.pid,
          resources: w.resources,
        });
    }
    for (const name of this.#seen)
      if (!names.has(name)) events.push({ type: 'left', worker: name, time: now });
    this.#seen = names;
    return events;
  }
}
