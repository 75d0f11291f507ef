/**
 * The worker's view of clients: is the client that sent a job still there? A client is gone when
 * it said goodbye (`gone` on the control channel), when its heartbeat key expired, or when no
 * connection of it has been subscribed to its presence channel for `presenceGraceMs` (its
 * process died: the kernel closed its sockets). See P:client in wire.ts.
 */
import type { Redis } from 'ioredis';
import { keys, presenceGraceMs } from './wire.js';

type Look = 'alive' | 'gone' | 'unsure';

export class ClientWatch {
  readonly #redis: Redis;
  readonly #keys: ReturnType<typeof keys>;
  readonly #usePresence: boolean;
  /** Clients that said goodbye: they never come back under the same id. */
  readonly #left = new Set<string>();
  /** Clients last seen gone (heartbeat expired, or absent past the grace); cleared when seen again. */
  readonly #gone = new Set<string>();
  /** When a client was first found connected nowhere, while its heartbeat still lasted. */
  readonly #absentSince = new Map<string, number>();

  /** `usePresence`: ask PUBSUB NUMSUB (not on a Redis Cluster, where it counts one node only). */
  constructor(redis: Redis, prefix: string, usePresence: boolean) {
    this.#redis = redis;
    this.#keys = keys(prefix);
    this.#usePresence = usePresence;
  }

  /** The client said goodbye. */
  left(client: string): void {
    if (this.#left.size > 100_000) this.#left.clear();
    this.#left.add(client);
  }

  /** True when the client is known to be gone (no Redis round trip). */
  isKnownGone(client: string): boolean {
    return this.#left.has(client) || this.#gone.has(client);
  }

  /**
   * Before starting a client's job: true when it is gone. A client connected nowhere whose
   * heartbeat still lasts may be reconnecting: this waits up to the grace period to know.
   */
  async isGone(client: string): Promise<boolean> {
    for (;;) {
      const look = await this.look(client);
      if (look !== 'unsure') return look === 'gone';
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** One look at the client: gone, alive, or unsure (connected nowhere, within the grace). */
  async look(client: string): Promise<Look> {
    if (this.#left.has(client)) return 'gone';
    const pipeline = this.#redis.pipeline().exists(this.#keys.client(client));
    if (this.#usePresence) pipeline.pubsub('NUMSUB', this.#keys.client(client));
    const replies = (await pipeline.exec()) ?? [];
    const beats = replies[0]?.[1] === 1;
    const subscribers = this.#usePresence
      ? Number((replies[1]?.[1] as [string, number] | undefined)?.[1] ?? 0)
      : 1;
    let look: Look;
    if (!beats) look = 'gone';
    else if (subscribers > 0) look = 'alive';
    else {
      const since = this.#absentSince.get(client) ?? Date.now();
      this.#absentSince.set(client, since);
      look = Date.now() - since >= presenceGraceMs ? 'gone' : 'unsure';
    }
    if (look === 'alive' || !beats) this.#absentSince.delete(client);
    if (look === 'gone') {
      if (this.#gone.size > 100_000) this.#gone.clear();
      this.#gone.add(client);
    } else this.#gone.delete(client);
    return look;
  }
}
