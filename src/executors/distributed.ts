/**
 * DistributedExecutor: tasks on a cluster of `weft worker`s over BullMQ and Redis, or on a local
 * cluster it starts itself.
 */
import { availableParallelism } from 'node:os';
import { ConfigurationError } from '../core/errors.js';
import { parseWorkers, readEnvironment } from '../core/config.js';
import { parseResources } from '../core/resources.js';
import {
  checkOptionKeys,
  checkOptionsObject,
  optionDefaults,
  optionKeys,
  parseBoolean,
  parseConcurrency,
} from '../core/options.js';
import { effectivePrefix, parseAddress } from '../distributed/address.js';
import { ClusterClient } from '../distributed/client.js';
import type { ClientSettings } from '../distributed/settings.js';
import {
  checkTlsAddress,
  resolveTls,
  tlsFromEnvironment,
  type TlsOptions,
} from '../distributed/tls.js';
import { parseSecrets, secretsFromEnvironment } from '../distributed/signing.js';
import { redactAddress } from '../distributed/wire.js';
import { BaseExecutor, type DashboardOption, type EngineSettings } from './base.js';

/** Options of `DistributedExecutor`. */
export interface DistributedExecutorOptions {
  /**
   * Address of a running cluster: `redis://[user:password@]host:port[/db]`, `rediss://...` for
   * TLS, `redis+cluster://host:port[,host:port...]` (or `rediss+cluster://`) for a Redis Cluster.
   * A user and password log in as that Redis ACL user. Absent: `start()` starts a local cluster.
   */
  address?: string;
  /** Local cluster: workers as child processes (true) or as worker threads of this process (false, the default). */
  localProcesses?: boolean;
  /** Local cluster size (default `os.availableParallelism()`). */
  workers?: number;
  /** Resources each local-cluster worker offers, e.g. `{ GPU: 1 }`. */
  resources?: Record<string, number>;
  /**
   * Local cluster: tasks in flight per worker, a positive integer (default 1). Tasks on one
   * worker interleave at their awaits. Workers of a cluster at `address` take theirs from
   * `weft worker --concurrency N`.
   */
  concurrency?: number;
  /** Log cluster activity to stderr, the local cluster's workers included (default `WEFT_DEBUG`). */
  debug?: boolean;
  /** Key prefix in Redis, to share one Redis between clusters (default `weft`). */
  prefix?: string;
  /** Serve a live dashboard on 127.0.0.1 while started. */
  dashboard?: DashboardOption;
  /**
   * Sign every job and accept only signed results (HMAC-SHA256); workers must have the same
   * secret, and refuse jobs that are unsigned or signed with another. Several secrets allow
   * rotation: the first signs, any verifies. Default: `WEFT_SECRET` (comma-separated), else none.
   * A local cluster's workers get it through IPC, never on a command line.
   * @example new DistributedExecutor({ address, secret: process.env.MY_SECRET })
   */
  secret?: string | string[];
  /**
   * TLS for a `rediss://` address: `ca` to trust, `cert` and `key` for mutual TLS, each PEM text
   * or a file path (read by the constructor). Default: `WEFT_TLS_CA`, `WEFT_TLS_CERT`,
   * `WEFT_TLS_KEY`, else Node's built-in CAs and no client certificate. A certificate that does
   * not verify fails `start()` with a `ConfigurationError` that says so.
   * @example new DistributedExecutor({ address: 'rediss://redis.internal:6380', tls: { ca: '/etc/weft/ca.pem' } })
   */
  tls?: TlsOptions;
}

const distributedKeys = optionKeys<DistributedExecutorOptions>({
  address: true,
  localProcesses: true,
  workers: true,
  resources: true,
  concurrency: true,
  debug: true,
  prefix: true,
  dashboard: true,
  secret: true,
  tls: true,
});

/**
 * Runs tasks on a cluster of `weft worker` processes through BullMQ over Redis. With `address`
 * it joins a running cluster; without, `start()` starts a private redis-server and `workers`
 * workers, and `shutdown()` stops them all. Same semantics as the local executors: futures as
 * arguments, map, retries, timeouts, cancellation, priorities, resources; values keep their
 * types (v8 serialization). A worker killed mid-task does not lose it: it runs again elsewhere.
 * Redis unreachable for 5 s is reported (stderr and a `warning` event); tasks lost to a Redis that
 * came back empty, or to the local cluster's redis-server dying, reject with `RedisLostError`;
 * `shutdown()` gives up on an unreachable Redis after 5 s. Workers stop the work of a client that
 * is gone (shut down with `cancelPending`, interrupted, killed).
 * @example
 * await using ex = await new DistributedExecutor({ address: 'redis://10.0.0.5:6379' }).start();
 * const results = await ex.wait(ex.map(render, frames));
 */
export class DistributedExecutor extends BaseExecutor {
  /** The cluster's address as given (undefined: a local cluster), for messages. */
  readonly #given: string | undefined;
  /** The client side of every session: local cluster, runtime, checks at submit. */
  readonly #client: ClusterClient;

  /**
   * Validates the options (throws `ConfigurationError` for an unknown key or a bad value);
   * connects to nothing and starts nothing until `start()`.
   */
  constructor(options: DistributedExecutorOptions = {}) {
    checkOptionsObject(options, 'DistributedExecutor');
    checkOptionKeys(options, distributedKeys, 'DistributedExecutor');
    super(options, 'DistributedExecutor');
    this.#given = options.address;
    this.#client = new ClusterClient(parseSettings(options));
  }

  /** The cluster's address once started (a local cluster's own), without password. */
  get address(): string | undefined {
    const address = this.#client.address;
    return address === undefined ? undefined : redactAddress(address);
  }

  protected get label(): string {
    return this.#given
      ? `DistributedExecutor (${redactAddress(this.#given)})`
      : 'DistributedExecutor (local cluster)';
  }

  protected createEngine(): EngineSettings {
    const client = this.#client;
    return {
      runtime: client,
      resources: undefined,
      graceMs: optionDefaults.graceMs,
      checkTask: (definition) => client.checkTask(definition),
    };
  }
}

/** The client's settings from the executor's options; throws `ConfigurationError` for a bad one. */
function parseSettings(options: DistributedExecutorOptions): ClientSettings {
  const { address } = options;
  if (address !== undefined) parseAddress(address, 'DistributedExecutor address');
  const processes =
    options.localProcesses === undefined
      ? optionDefaults.localProcesses
      : parseBoolean(options.localProcesses, 'DistributedExecutor localProcesses');
  const workers =
    options.workers === undefined
      ? undefined
      : parseWorkers(options.workers, 'DistributedExecutor workers');
  const concurrency =
    options.concurrency === undefined
      ? optionDefaults.clusterConcurrency
      : parseConcurrency(options.concurrency, 'DistributedExecutor concurrency', false);
  const resources = parseResources(options.resources, 'DistributedExecutor resources') ?? {};
  const debug =
    options.debug === undefined
      ? readEnvironment().debug
      : parseBoolean(options.debug, 'DistributedExecutor debug');
  const prefix = options.prefix ?? optionDefaults.prefix;
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_{}.-]+$/.test(prefix)) {
    throw new ConfigurationError(
      `DistributedExecutor prefix ${JSON.stringify(prefix)} may only hold letters, digits, '_', '-', '.', '{' and '}'.`,
    );
  }
  if (options.tls !== undefined && address === undefined)
    throw new ConfigurationError(
      'DistributedExecutor tls applies to a rediss:// address, but there is none: a local cluster runs on loopback without TLS. Pass address, or drop tls.',
    );
  const tls =
    options.tls !== undefined
      ? resolveTls(options.tls, 'DistributedExecutor tls')
      : address !== undefined && /^rediss/i.test(address)
        ? tlsFromEnvironment()
        : undefined;
  checkTlsAddress(tls, address, 'DistributedExecutor tls');
  const secrets =
    options.secret === undefined
      ? secretsFromEnvironment()
      : parseSecrets(options.secret, 'DistributedExecutor secret');
  return {
    cluster:
      address === undefined
        ? {
            kind: 'local',
            workers: workers ?? availableParallelism(),
            processes,
            concurrency,
            resources,
          }
        : { kind: 'remote', address, tls },
    prefix: effectivePrefix(prefix, address),
    secrets,
    debug,
  };
}
