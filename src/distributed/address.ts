/**
 * Cluster addresses, checked without loading the Redis client (so that importing weft, or
 * constructing an executor, does not load BullMQ and ioredis).
 *
 *   redis://[user:password@]host:port[/db]          one Redis
 *   rediss://...                                    one Redis over TLS
 *   redis+cluster://[user:password@]host:port[,host:port...]   a Redis Cluster (seed nodes)
 *   rediss+cluster://...                            a Redis Cluster over TLS
 */
import { ConfigurationError } from '../core/errors.js';
import { redactAddress } from './wire.js';

/** What an address says. */
export interface RedisTargetInfo {
  tls: boolean;
  cluster: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  db?: number;
}

const schemes = ['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:'];

/** Validates a cluster address; throws `ConfigurationError` naming what is wrong (never the password). */
export function parseAddress(address: unknown, source = 'address'): RedisTargetInfo {
  if (typeof address !== 'string' || address.trim() === '') {
    throw new ConfigurationError(
      `${source} must be a redis://, rediss:// or redis+cluster:// URL, e.g. redis://127.0.0.1:6379, got ${typeof address === 'string' ? 'an empty string' : String(address)}.`,
    );
  }
  const scheme = /^([a-z+]+:)\/\//i.exec(address)?.[1]?.toLowerCase();
  if (!scheme || !schemes.includes(scheme)) {
    throw new ConfigurationError(
      `${source} must start with redis://, rediss://, redis+cluster:// or rediss+cluster://, got ${scheme ? `${scheme}//` : 'no scheme'} (${redactAddress(address)}).`,
    );
  }
  const cluster = scheme.includes('+cluster');
  const rest = address.slice(scheme.length + 2);
  // user:password@ may hold ',' and '/' (URL-encoded or not); the host list starts after the last '@'.
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hostPart = at >= 0 ? rest.slice(at + 1) : rest;
  const hosts = cluster ? hostPart.replace(/\/+$/, '') : hostPart;
  let url: URL;
  const info: RedisTargetInfo = { tls: scheme.startsWith('rediss'), cluster, nodes: [] };
  const invalid = (): ConfigurationError =>
    new ConfigurationError(
      `${source} is not a valid address (${redactAddress(address)}). Write it as redis://[user:password@]host:port[/db], rediss://... for TLS, or redis+cluster://host:port,host:port for a Redis Cluster.`,
    );
  for (const node of cluster ? hosts.split(',') : [hosts]) {
    try {
      url = new URL(`redis://${auth ? `${auth}@` : ''}${node.trim()}`);
    } catch {
      throw invalid();
    }
    if (!url.hostname)
      throw new ConfigurationError(`${source} has no host (${redactAddress(address)}).`);
    info.nodes.push({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 6379,
    });
    if (url.username) info.username = decodeURIComponent(url.username);
    if (url.password) info.password = decodeURIComponent(url.password);
    const db = url.pathname.replace(/^\//, '');
    if (db && cluster)
      throw new ConfigurationError(
        `${source} names database '${db}', but a Redis Cluster has only database 0 (${redactAddress(address)}).`,
      );
    if (db && !/^\d+$/.test(db))
      throw new ConfigurationError(
        `${source} names database '${db}', but Redis databases are numbers (${redactAddress(address)}).`,
      );
    if (db) info.db = Number(db);
  }
  return info;
}

/**
 * The key prefix to use: on a Redis Cluster it must be a hash tag (`{weft}`), so that each
 * BullMQ queue's keys (which its Lua scripts touch together) share one slot.
 */
export function effectivePrefix(prefix: string, address: string | undefined): string {
  if (address === undefined || !/^rediss?\+cluster:/i.test(address)) return prefix;
  return /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}
