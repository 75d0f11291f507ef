/**
 * What a `DistributedExecutor` hands its client side: its options, validated and resolved once by
 * the facade. Nothing under `distributed/` parses them again.
 */
import type { TlsMaterial } from './tls.js';

/** A running cluster to join. */
export interface RemoteClusterSettings {
  readonly kind: 'remote';
  /** Its Redis: `redis://`, `rediss://`, `redis+cluster://` or `rediss+cluster://`, password included. */
  readonly address: string;
  /** CA, client certificate and key for a `rediss` address; undefined: Node's defaults. */
  readonly tls: TlsMaterial | undefined;
}

/** A local cluster to start with the session: a private redis-server plus its workers. */
export interface LocalClusterSettings {
  readonly kind: 'local';
  /** How many workers. */
  readonly workers: number;
  /** Workers as child processes (true) or as worker threads of this process (false). */
  readonly processes: boolean;
  /** Tasks in flight per worker. */
  readonly concurrency: number;
  /** What each worker offers, e.g. `{ GPU: 1 }`; tasks that need more are refused at submit. */
  readonly resources: Readonly<Record<string, number>>;
}

export interface ClientSettings {
  readonly cluster: RemoteClusterSettings | LocalClusterSettings;
  /** Key prefix in Redis, hash-tagged for a Redis Cluster (see address.ts). */
  readonly prefix: string;
  /** Secrets: the first signs every job, any verifies a result; undefined: nothing is signed. */
  readonly secrets: readonly string[] | undefined;
  /** Log cluster activity to stderr, the local cluster's workers included. */
  readonly debug: boolean;
}
