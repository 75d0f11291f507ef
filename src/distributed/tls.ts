/**
 * TLS to Redis: the `tls` option, `WEFT_TLS_CA` / `WEFT_TLS_CERT` / `WEFT_TLS_KEY` and the
 * worker's `--tls-*` flags give a CA to trust and a client certificate and key (mutual TLS),
 * each as PEM text or a file path. Read once, when the executor or worker is configured, so that
 * a wrong path fails there and not on the first reconnect. Loads no Redis client.
 */
import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../core/errors.js';

/** The `tls` option: PEM text or file paths. */
export interface TlsOptions {
  /** CA certificate(s) to trust, PEM text or a file path (default: Node's built-in CAs). */
  ca?: string;
  /** Client certificate for mutual TLS, PEM text or a file path (with `key`). */
  cert?: string;
  /** Private key of `cert`, PEM text or a file path. */
  key?: string;
  /** Verify the server's certificate (default true). Turning it off lets anyone on the path read and change every job. */
  rejectUnauthorized?: boolean;
}

/** TLS settings as PEM text, ready for a socket. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

const knownKeys = new Set(['ca', 'cert', 'key', 'rejectUnauthorized']);

function pem(value: unknown, source: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ConfigurationError(
      `${source} must be PEM text or the path of a PEM file, got ${typeof value === 'string' ? 'an empty string' : typeof value}.`,
    );
  if (value.includes('-----BEGIN ')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      `${source}: ${value} could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'}). Give PEM text or the path of a PEM file.`,
    );
  }
}

/** Checks the `tls` option and reads its files; `source` names it in errors. */
export function resolveTls(value: unknown, source: string): TlsMaterial | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigurationError(
      `${source} must be an object { ca?, cert?, key?, rejectUnauthorized? }, got ${Array.isArray(value) ? 'an array' : String(value)}.`,
    );
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options))
    if (!knownKeys.has(key))
      throw new ConfigurationError(
        `${source} has no option '${key}'; it takes ca, cert, key and rejectUnauthorized.`,
      );
  const out: TlsMaterial = {};
  if (options.ca !== undefined) out.ca = pem(options.ca, `${source}.ca`);
  if (options.cert !== undefined) out.cert = pem(options.cert, `${source}.cert`);
  if (options.key !== undefined) out.key = pem(options.key, `${source}.key`);
  if ((out.cert === undefined) !== (out.key === undefined))
    throw new ConfigurationError(
      `${source} has a ${out.cert === undefined ? 'key without a cert' : 'cert without a key'}: mutual TLS needs both the client certificate and its private key.`,
    );
  if (options.rejectUnauthorized !== undefined) {
    if (typeof options.rejectUnauthorized !== 'boolean')
      throw new ConfigurationError(
        `${source}.rejectUnauthorized must be true or false, got ${typeof options.rejectUnauthorized}.`,
      );
    out.rejectUnauthorized = options.rejectUnauthorized;
  }
  return out;
}

/** TLS settings from `WEFT_TLS_CA`, `WEFT_TLS_CERT` and `WEFT_TLS_KEY`, or undefined when none is set. */
export function tlsFromEnvironment(env: NodeJS.ProcessEnv = process.env): TlsMaterial | undefined {
  const picked: Record<string, string> = {};
  if (env.WEFT_TLS_CA?.trim()) picked.ca = env.WEFT_TLS_CA.trim();
  if (env.WEFT_TLS_CERT?.trim()) picked.cert = env.WEFT_TLS_CERT.trim();
  if (env.WEFT_TLS_KEY?.trim()) picked.key = env.WEFT_TLS_KEY.trim();
  if (Object.keys(picked).length === 0) return undefined;
  return resolveTls(picked, 'WEFT_TLS_*');
}

/** Checks that TLS settings go with a TLS address (`rediss://`). */
export function checkTlsAddress(
  tls: TlsMaterial | undefined,
  address: string | undefined,
  source: string,
): void {
  if (!tls || address === undefined) return;
  if (!/^rediss(\+cluster)?:\/\//i.test(address))
    throw new ConfigurationError(
      `${source} gives TLS settings, but the address does not use TLS; write it as rediss://host:port (or rediss+cluster://...).`,
    );
}

const verifyCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A sentence about a TLS failure, with what to pass, or undefined when `error` is not one.
 * `server`: the server's certificate did not verify; `client`: the server refused ours.
 */
export function explainTlsError(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (verifyCodes.has(code))
    return `TLS verification failed: the Redis server's certificate does not verify (${code}: ${message}). Pass the CA that signed it: tls: { ca } (PEM text or a file path), WEFT_TLS_CA, or weft worker --tls-ca PATH; for a name mismatch, connect by the name the certificate was issued for.`;
  if (/alert (certificate required|bad certificate|unknown ca|handshake failure)/i.test(message))
    return `TLS verification failed: the Redis server refused this client's certificate, or its lack of one (${message.trim()}). Pass a client certificate and key signed by a CA the server trusts: tls: { cert, key }, WEFT_TLS_CERT and WEFT_TLS_KEY, or weft worker --tls-cert PATH --tls-key PATH.`;
  if (/PEM routines|no start line|bad decrypt|key values mismatch/i.test(message))
    return `TLS failed: a certificate or key is not valid PEM, or the key does not match the certificate (${message.trim()}). Check the files given as tls: { ca, cert, key }, WEFT_TLS_* or --tls-*.`;
  if (/wrong version number|packet length too long/i.test(message))
    return `TLS failed: the server does not speak TLS on this port (${message.trim()}). Use redis:// for a plain port, or the server's TLS port with rediss://.`;
  return undefined;
}
