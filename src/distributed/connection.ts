/**
 * Redis connections for an address (see address.ts): one Redis or a Redis Cluster, with the
 * URL's user and password and TLS settings. ioredis is the client BullMQ is built on; weft never
 * exposes its types. Every connection weft makes goes through here, BullMQ's included, so that
 * each gets the same TLS options and credentials.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigurationError } from '../core/errors.js';
import { parseAddress } from './address.js';
import { explainTlsError, type TlsMaterial } from './tls.js';
import { redactAddress } from './wire.js';

export { parseAddress };

/** Where to connect: an address plus the TLS settings that do not fit in it. */
export interface RedisTarget {
  address: string;
  tls?: TlsMaterial | undefined;
}

function target(of: string | RedisTarget): RedisTarget {
  return typeof of === 'string' ? { address: of } : of;
}

/** ioredis options for one node of the target (host and port: its first node). */
export function redisOptions(of: string | RedisTarget, extra: RedisOptions = {}): RedisOptions {
  const { address, tls } = target(of);
  const info = parseAddress(address);
  const first = info.nodes[0]!;
  return {
    host: first.host,
    port: first.port,
    ...(info.username ? { username: info.username } : {}),
    ...(info.password ? { password: info.password } : {}),
    ...(info.db ? { db: info.db } : {}),
    ...(info.tls
      ? {
          tls: {
            // An IP address is no server name (RFC 6066); Node then checks the IP SANs.
            ...(isIP(first.host) ? {} : { servername: first.host }),
            ...tls,
          },
        }
      : {}),
    // Commands wait through a reconnect instead of failing: a dropped connection loses nothing.
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(50 * times, 1000),
    // How long disconnect() lets a socket close by itself before destroying it (ioredis: 2 s). A
    // socket to a Redis that is gone never closes by itself, and the timer would hold the process.
    disconnectTimeout: 300,
    lazyConnect: false,
    ...extra,
  };
}

/**
 * A connection to the target. On a Redis Cluster it is ioredis's `Cluster`, which speaks the
 * same commands; it is typed as `Redis` so that callers need not care (keys used together in
 * one MULTI or pipeline must share a hash tag there).
 */
export function connect(of: string | RedisTarget, name: string, extra: RedisOptions = {}): Redis {
  const t = target(of);
  const options = { ...redisOptions(t, extra), connectionName: name };
  const redis = parseAddress(t.address).cluster ? cluster(t, options) : new Redis(options);
  // Errors surface through the commands that fail; ioredis would otherwise print each reconnect
  // attempt. The last one is kept for waitForRedis (a TLS failure, a refused password).
  redis.on('error', (error: unknown) => lastErrors.set(redis, error));
  return redis;
}

function cluster(t: RedisTarget, options: RedisOptions): Redis {
  const { host: _host, port: _port, db: _db, retryStrategy: _retry, ...nodeOptions } = options;
  const info = parseAddress(t.address);
  return new Cluster(info.nodes, {
    redisOptions: nodeOptions,
    clusterRetryStrategy: (times: number) => Math.min(50 * times, 1000),
    // Nodes announce IP addresses; keep them as they are (no DNS lookup of an IP).
    dnsLookup: (address, callback) => callback(null, address),
    slotsRefreshTimeout: 2000,
  }) as unknown as Redis;
}

const lastErrors = new WeakMap<object, unknown>();

/**
 * The `connection` to give a BullMQ Queue or Worker, and how to release it. One Redis: options
 * (BullMQ makes and closes its connections); a Redis Cluster: a `Cluster` instance (BullMQ only
 * takes cluster connections as instances, and does not close those: `release` does).
 */
export function bullConnection(
  of: string | RedisTarget,
  name: string,
): { connection: ConnectionOptions; release: () => Promise<void> } {
  const t = target(of);
  if (!parseAddress(t.address).cluster)
    return {
      connection: redisOptions(t, { connectionName: name }) as unknown as ConnectionOptions,
      release: async () => undefined,
    };
  const redis = connect(t, name);
  return {
    connection: redis,
    release: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** True when the target is a Redis Cluster. */
export function isCluster(of: string | RedisTarget): boolean {
  return parseAddress(target(of).address).cluster;
}

/**
 * Resolves when the server answers PING, or rejects after `timeoutMs` with a message that names
 * the address (without password). A TLS failure or a refused login rejects at once, saying what
 * to pass.
 */
export async function waitForRedis(
  redis: Redis,
  of: string | RedisTarget,
  timeoutMs: number,
): Promise<void> {
  const { address } = target(of);
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
      last = lastErrors.get(redis) ?? error;
      const fatal = fatalConnectError(last, address);
      if (fatal) {
        redis.disconnect();
        throw fatal;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  redis.disconnect();
  throw new ConfigurationError(
    `Could not reach Redis at ${redactAddress(address)} within ${timeoutMs / 1000} s (${last instanceof Error ? last.message : String(last)}). Check that redis-server runs there and the address, password and TLS scheme are right.`,
  );
}

/** An error that retrying cannot fix (TLS, login), as a ConfigurationError that says what to do. */
function fatalConnectError(error: unknown, address: string): ConfigurationError | undefined {
  const tls = explainTlsError(error);
  if (tls)
    return new ConfigurationError(`Redis at ${redactAddress(address)}: ${tls}`, { cause: error });
  const message = error instanceof Error ? error.message : '';
  if (/WRONGPASS|NOAUTH|invalid (username-)?password/i.test(message))
    return new ConfigurationError(
      `Redis at ${redactAddress(address)} refused the login (${message}). Check the user and password in the address: redis://user:password@host:port.`,
      { cause: error },
    );
  return undefined;
}

/**
 * Rewrites a Redis ACL refusal (NOPERM) into an error that names the missing permission and
 * where to find the rules; other errors pass through.
 */
export function explainPermission(error: unknown, who: string): unknown {
  // A MULTI with a refused command fails as EXECABORT; the refusal is among previousErrors.
  const errors = [error, ...((error as { previousErrors?: unknown[] }).previousErrors ?? [])];
  const message =
    errors.map((e) => (e instanceof Error ? e.message : '')).find((m) => /NOPERM/.test(m)) ?? '';
  if (!message) return error;
  return new ConfigurationError(
    `${who}: the Redis user lacks a permission weft needs (${message}). Give it the ACL rules in README's "ACL users" section for this prefix.`,
    { cause: error },
  );
}
