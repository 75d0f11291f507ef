/**
 * DistributedExecutor: tasks on a cluster of `weft worker`s over BullMQ and Redis, or on a local
 * cluster it starts itself.
 */
import { availableParallelism } from 'node:os';
import { ConfigurationError, ResourceUnavailableError } from '../core/errors.js';
import { parseResources, parseWorkers, readEnvironment } from '../core/config.js';
import {
  checkOptionKeys,
  checkOptionsObject,
  optionDefaults,
  optionKeys,
  parseBoolean,
  parseConcurrency,
} from '../core/options.js';
import type { TaskDefinition } from '../core/task.js';
import { effectivePrefix, parseAddress } from '../distributed/address.js';
import {
  checkTlsAddress,
  resolveTls,
  tlsFromEnvironment,
  type TlsMaterial,
  type TlsOptions,
} from '../distributed/tls.js';
import { parseSecrets, secretsFromEnvironment, Signer } from '../distributed/signing.js';
import { startLocalCluster, type LocalCluster } from '../distributed/local-cluster.js';
import type { DistributedRuntime } from '../distributed/runtime.js';
import {
  redactAddress,
  resourceSignature,
  satisfies,
  type WorkerInfo,
} from '../distributed/wire.js';
import type { Attempt, Runtime, RuntimeHost } from '../core/runtime.js';
import type { Explanation } from '../core/explain.js';
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
  readonly #address: string | undefined;
  readonly #localProcesses: boolean;
  readonly #workers: number | undefined;
  readonly #concurrency: number;
  readonly #resources: Record<string, number>;
  readonly #debug: boolean;
  readonly #prefix: string;
  readonly #secrets: string[] | undefined;
  readonly #tls: TlsMaterial | undefined;
  #cluster: LocalCluster | undefined;
  #live: WorkerInfo[] = [];
  #warned = new Set<string>();

  /**
   * Validates the options (throws `ConfigurationError` for an unknown key or a bad value);
   * connects to nothing and starts nothing until `start()`.
   */
  constructor(options: DistributedExecutorOptions = {}) {
    checkOptionsObject(options, 'DistributedExecutor');
    checkOptionKeys(options, distributedKeys, 'DistributedExecutor');
    super(options, 'DistributedExecutor');
    if (options.address !== undefined) parseAddress(options.address, 'DistributedExecutor address');
    this.#address = options.address;
    this.#localProcesses =
      options.localProcesses === undefined
        ? optionDefaults.localProcesses
        : parseBoolean(options.localProcesses, 'DistributedExecutor localProcesses');
    this.#workers =
      options.workers === undefined
        ? undefined
        : parseWorkers(options.workers, 'DistributedExecutor workers');
    this.#concurrency =
      options.concurrency === undefined
        ? optionDefaults.clusterConcurrency
        : parseConcurrency(options.concurrency, 'DistributedExecutor concurrency', false);
    this.#resources = parseResources(options.resources, 'DistributedExecutor resources') ?? {};
    this.#debug =
      options.debug === undefined
        ? readEnvironment().debug
        : parseBoolean(options.debug, 'DistributedExecutor debug');
    const prefix = options.prefix ?? optionDefaults.prefix;
    if (typeof prefix !== 'string' || !/^[A-Za-z0-9_{}.-]+$/.test(prefix)) {
      throw new ConfigurationError(
        `DistributedExecutor prefix ${JSON.stringify(prefix)} may only hold letters, digits, '_', '-', '.', '{' and '}'.`,
      );
    }
    this.#prefix = effectivePrefix(prefix, options.address);
    if (options.tls !== undefined && options.address === undefined)
      throw new ConfigurationError(
        'DistributedExecutor tls applies to a rediss:// address, but there is none: a local cluster runs on loopback without TLS. Pass address, or drop tls.',
      );
    this.#tls =
      options.tls !== undefined
        ? resolveTls(options.tls, 'DistributedExecutor tls')
        : options.address !== undefined && /^rediss/i.test(options.address)
          ? tlsFromEnvironment()
          : undefined;
    checkTlsAddress(this.#tls, options.address, 'DistributedExecutor tls');
    this.#secrets =
      options.secret === undefined
        ? secretsFromEnvironment()
        : parseSecrets(options.secret, 'DistributedExecutor secret');
  }

  /** The cluster's address once started (a local cluster's own), without password. */
  get address(): string | undefined {
    const address = this.#cluster?.address ?? this.#address;
    return address === undefined ? undefined : redactAddress(address);
  }

  protected get label(): string {
    return this.#address
      ? `DistributedExecutor (${redactAddress(this.#address)})`
      : 'DistributedExecutor (local cluster)';
  }

  protected createEngine(): EngineSettings {
    const local = this.#address === undefined;
    const runtime = new ClusterRuntime(this, local);
    return {
      runtime,
      resources: undefined,
      graceMs: optionDefaults.graceMs,
      checkTask: (definition) => this.#checkTask(definition, local),
    };
  }

  /** Starts the local cluster when there is no address; returns the address to use. */
  async prepare(): Promise<string> {
    if (this.#address) return this.#address;
    this.#cluster = await startLocalCluster({
      workers: this.#workers ?? availableParallelism(),
      processes: this.#localProcesses,
      concurrency: this.#concurrency,
      resources: this.#resources,
      prefix: this.#prefix,
      ...(this.#secrets ? { secret: this.#secrets } : {}),
      debug: this.#debug,
    });
    this.#log(
      `local cluster: redis-server at ${this.#cluster.address}, workers ${this.#cluster.workerNames.join(', ')}`,
    );
    return this.#cluster.address;
  }

  /** Calls `listener` if the local cluster's redis-server dies before shutdown. */
  onRedisExit(listener: (how: string) => void): void {
    this.#cluster?.onRedisExit(listener);
  }

  async release(): Promise<void> {
    const cluster = this.#cluster;
    this.#cluster = undefined;
    await cluster?.stop();
  }

  get prefix(): string {
    return this.#prefix;
  }

  get tls(): TlsMaterial | undefined {
    return this.#tls;
  }

  /** A signer over the secrets, for the runtime (the secrets stay private). */
  signer(): Signer | undefined {
    return this.#secrets ? new Signer(this.#secrets) : undefined;
  }

  wantsStarts(): boolean {
    return this.events !== undefined && (this.events as { active?: boolean }).active === true;
  }

  onWorkers(workers: WorkerInfo[]): void {
    this.#live = workers;
  }

  #checkTask(definition: TaskDefinition, local: boolean): void {
    const need = definition.options.resources;
    const signature = resourceSignature(need);
    if (!signature) return;
    if (local) {
      if (!satisfies(this.#resources, need)) {
        const offers = resourceSignature(this.#resources) || 'no resources';
        throw new ResourceUnavailableError(
          `Task '${definition.options.name}' needs ${signature}, but every worker of this local cluster offers ${offers}, so it could never run. Pass resources: { ${Object.entries(
            need,
          )
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')} } to DistributedExecutor, or lower the task's requirement.`,
        );
      }
      return;
    }
    if (!this.#live.some((w) => satisfies(w.resources, need)) && !this.#warned.has(signature)) {
      this.#warned.add(signature);
      const offers =
        this.#live
          .map((w) => `${w.name}: ${resourceSignature(w.resources) || 'none'}`)
          .join('; ') || 'no worker is connected';
      process.emitWarning(
        `Task '${definition.options.name}' needs ${signature}, which no connected worker offers (${offers}). It waits until a worker with enough joins: start one with weft worker --resources ${signature}.`,
        { code: 'WEFT_RESOURCES_WAITING' },
      );
    }
  }

  #log(line: string): void {
    if (this.#debug) process.stderr.write(`[weft] ${line}\n`);
  }
}

/** The distributed runtime plus the local cluster's lifetime. */
class ClusterRuntime implements Runtime {
  readonly boundary = 'process' as const;
  readonly immediate = false;
  #inner: DistributedRuntime | undefined;
  constructor(
    private readonly executor: DistributedExecutor,
    private readonly local: boolean,
  ) {}

  async start(host: RuntimeHost): Promise<void> {
    // BullMQ and ioredis load here, on first use, not when weft is imported.
    const { DistributedRuntime } = await import('../distributed/runtime.js');
    const address = await this.executor.prepare();
    this.#inner = new DistributedRuntime({
      address,
      prefix: this.executor.prefix,
      wantsStarts: () => this.executor.wantsStarts(),
      onWorkers: (w) => this.executor.onWorkers(w),
      signer: this.executor.signer(),
      ...(this.executor.tls ? { tls: this.executor.tls } : {}),
    });
    try {
      await this.#inner.start(host);
    } catch (error) {
      await this.executor.release();
      throw error;
    }
    const inner = this.#inner;
    this.executor.onRedisExit((how) => inner.serverExited(how));
  }
  beginShutdown(cancelPending: boolean): void {
    this.#inner?.beginShutdown(cancelPending);
  }
  capacity(): number {
    return this.#inner?.capacity() ?? 0;
  }
  run(attempt: Attempt): void {
    this.#inner!.run(attempt);
  }
  abort(attempt: Attempt, reason: Error): void {
    this.#inner!.abort(attempt, reason);
  }
  store(value: unknown, key: string): unknown {
    return this.#inner!.store(value, key);
  }
  taskFailed(key: string, explain: () => Promise<Explanation>): void {
    this.#inner?.taskFailed(key, explain);
  }
  explain(attempt: Attempt, worker: string | undefined): Promise<string | undefined> {
    return this.#inner?.explain(attempt, worker) ?? Promise.resolve(undefined);
  }
  async close(): Promise<void> {
    await this.#inner?.close();
    if (this.local) await this.executor.release();
  }
}
