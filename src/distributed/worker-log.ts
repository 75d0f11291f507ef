/**
 * What a cluster worker logs about its Redis: one line when Redis is lost and one when it is
 * back, however often reconnects fail between; other errors at most once a minute each, so that a
 * repeating one does not flood the log.
 */
import type { Redis } from 'ioredis';

export class RedisLog {
  readonly #address: string;
  readonly #log: (line: string) => void;
  /** When Redis was lost (epoch ms), while it is. */
  #downSince: number | undefined;
  /** The last error the connection gave, for the "lost" line. */
  #lastError = '';
  /** Lines logged by `once`, with when (epoch ms); cleared past 1000. */
  readonly #logged = new Map<string, number>();

  /** `address`: already redacted (no password). */
  constructor(address: string, log: (line: string) => void) {
    this.#address = address;
    this.#log = log;
  }

  /** Logs `redis` going away and coming back; `isClosed`: the worker left, a close is no news. */
  watch(redis: Redis, isClosed: () => boolean): void {
    redis.on('error', (error: Error) => (this.#lastError = error.message));
    redis.on('close', () => {
      if (isClosed() || this.#downSince !== undefined) return;
      this.#downSince = Date.now();
      this.#log(
        `lost Redis at ${this.#address}${this.#lastError ? ` (${this.#lastError})` : ''}; retrying, quietly until it is back`,
      );
    });
    redis.on('ready', () => {
      if (this.#downSince === undefined) return;
      this.#log(
        `Redis at ${this.#address} is back after ${((Date.now() - this.#downSince) / 1000).toFixed(1)} s`,
      );
      this.#downSince = undefined;
    });
  }

  /** Logs `line` unless the same line was logged in the last minute. */
  once(line: string): void {
    const now = Date.now();
    if ((this.#logged.get(line) ?? 0) > now - 60_000) return;
    if (this.#logged.size > 1000) this.#logged.clear();
    this.#logged.set(line, now);
    this.#log(line);
  }
}
