/**
 * Redis connections from a `redis://` or `rediss://` URL (password and TLS as the URL says).
 * ioredis is the client BullMQ is built on; weft never exposes its types.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigurationError } from '../core/errors.js';
import { parseAddress } from './address.js';
import { redactAddress } from './wire.js';

export { parseAddress };

/** ioredis options for a URL. `blocking`: a connection that may wait forever (BullMQ workers, XREAD). */
export function redisOptions(address: string, extra: RedisOptions = {}): RedisOptions {
  const url = parseAddress(address);
  const db = url.pathname.replace(/^\//, '');
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname } } : {}),
    // Commands wait through a reconnect instead of failing: a dropped connection loses nothing.
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    lazyConnect: false,
    ...extra,
  };
}

export function connect(address: string, name: string, extra: RedisOptions = {}): Redis {
  const redis = new Redis({ ...redisOptions(address, extra), connectionName: name });
  // Errors surface through the commands that fail; ioredis would otherwise print each reconnect attempt.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves when the server answers PING, or rejects after `timeoutMs` with a message that names the address (without password). */
export async function waitForRedis(
  redis: Redis,
  address: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await Promise.race([
        redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 1000).unref()),
      ]);
      return;
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new ConfigurationError(
    `Could not reach Redis at ${redactAddress(address)} within ${timeoutMs / 1000} s (${last instanceof Error ? last.message : String(last)}). Check that redis-server runs there and the address, password and TLS scheme are right.`,
  );
}
