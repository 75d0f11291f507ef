/**
 * Redis connections from a `redis://` or `rediss://` URL (password and TLS as the URL says).
 * ioredis is the client BullMQ is built on; weft never exposes its types.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigurationError } from '../core/errors.js';
import { redactAddress } from './wire.js';

/** Validates a cluster address; throws `ConfigurationError` naming what is wrong (never the password). */
export function parseAddress(address: unknown, source = 'address'): URL {
  if (typeof address !== 'string' || address.trim() === '') {
    throw new ConfigurationError(
      `${source} must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379, got ${typeof address === 'string' ? 'an empty string' : String(address)}.`,
    );
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new ConfigurationError(
      `${source} is not a valid URL (${redactAddress(address)}). Write it as redis://[:password@]host:port[/db] or rediss://... for TLS.`,
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigurationError(
      `${source} must start with redis:// or rediss://, got ${url.protocol}// (${redactAddress(address)}).`,
    );
  }
  if (!url.hostname)
    throw new ConfigurationError(`${source} has no host (${redactAddress(address)}).`);
  const db = url.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db))
    throw new ConfigurationError(
      `${source} names database '${db}', but Redis databases are numbers (${redactAddress(address)}).`,
    );
  return url;
}

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
