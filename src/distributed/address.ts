/**
 * Cluster addresses, checked without loading the Redis client (so that importing weft, or
 * constructing an executor, does not load BullMQ and ioredis).
 */
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
