/**
 * The client side of one `DistributedExecutor`, for all its sessions: each `start()` starts the
 * local cluster (when there is no address), then a `DistributedRuntime` on it; `close()` stops
 * both. It also checks each task at submit against what the cluster offers. BullMQ and ioredis
 * load with the runtime, on first start, not when weft is imported.
 */
import { ResourceUnavailableError } from '../core/errors.js';
import type { Explanation } from '../core/explain.js';
import type { Attempt, Runtime, RuntimeHost } from '../core/runtime.js';
import type { TaskDefinition } from '../core/task.js';
import { startLocalCluster, type LocalCluster } from './local-cluster.js';
import type { DistributedRuntime } from './runtime.js';
import type { ClientSettings } from './settings.js';
import {
  describeOffer,
  describeOffers,
  hasResources,
  resourceSignature,
  resourcesLiteral,
  satisfies,
} from '../core/resources.js';
import type { WorkerInfo } from './wire.js';

export class ClusterClient implements Runtime {
  readonly boundary = 'process' as const;
  readonly immediate = false;
  readonly #settings: ClientSettings;
  /** This session's runtime, from `start()` on (also one whose start failed, until `close()`). */
  #inner: DistributedRuntime | undefined;
  /** This session's local cluster, from its start to `close()`. */
  #cluster: LocalCluster | undefined;
  /** Live workers of a cluster at an address, as the runtime last read them. */
  #live: WorkerInfo[] = [];
  /** Resource signatures warned about (once per executor): no connected worker offered them. */
  readonly #warned = new Set<string>();

  constructor(settings: ClientSettings) {
    this.#settings = settings;
  }

  /** The cluster's address, password included: a local cluster's own while it runs. */
  get address(): string | undefined {
    if (this.#settings.cluster.kind === 'remote') return this.#settings.cluster.address;
    return this.#cluster?.address;
  }

  async start(host: RuntimeHost): Promise<void> {
    this.#inner = undefined;
    // BullMQ and ioredis load here, on first use, not when weft is imported.
    const { DistributedRuntime } = await import('./runtime.js');
    const address = await this.#prepare();
    const inner = new DistributedRuntime({
      settings: this.#settings,
      address,
      onWorkers: (workers) => {
        this.#live = workers;
      },
    });
    this.#inner = inner;
    try {
      await inner.start(host);
    } catch (error) {
      await this.#release();
      throw error;
    }
    this.#cluster?.onRedisExit((how) => inner.serverExited(how));
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
    await this.#release();
  }

  /**
   * At submit: a task that needs resources a local cluster's workers lack is refused
   * (`ResourceUnavailableError`); one that no connected worker of a cluster at an address offers
   * waits for one, with a warning (once per resource signature).
   */
  checkTask(definition: TaskDefinition): void {
    const need = definition.options.resources;
    if (!hasResources(need)) return;
    const signature = resourceSignature(need);
    const cluster = this.#settings.cluster;
    if (cluster.kind === 'local') {
      if (!satisfies(cluster.resources, need)) {
        throw new ResourceUnavailableError(
          `Task '${definition.options.name}' needs ${signature}, but every worker of this local cluster offers ${describeOffer(cluster.resources)}, so it could never run. Pass resources: ${resourcesLiteral(need)} to DistributedExecutor, or lower the task's requirement.`,
        );
      }
      return;
    }
    if (!this.#live.some((w) => satisfies(w.resources, need)) && !this.#warned.has(signature)) {
      this.#warned.add(signature);
      process.emitWarning(
        `Task '${definition.options.name}' needs ${signature}, which no connected worker offers (${describeOffers(this.#live)}). It waits until a worker with enough joins: start one with weft worker --resources ${signature}.`,
        { code: 'WEFT_RESOURCES_WAITING' },
      );
    }
  }

  /** Starts the local cluster when there is no address; returns the address to use. */
  async #prepare(): Promise<string> {
    const { cluster, prefix, secrets, debug } = this.#settings;
    if (cluster.kind === 'remote') return cluster.address;
    this.#cluster = await startLocalCluster({
      workers: cluster.workers,
      processes: cluster.processes,
      concurrency: cluster.concurrency,
      resources: cluster.resources,
      prefix,
      ...(secrets ? { secret: [...secrets] } : {}),
      debug,
    });
    if (debug)
      process.stderr.write(
        `[weft] local cluster: redis-server at ${this.#cluster.address}, workers ${this.#cluster.workerNames.join(', ')}\n`,
      );
    return this.#cluster.address;
  }

  async #release(): Promise<void> {
    const cluster = this.#cluster;
    this.#cluster = undefined;
    await cluster?.stop();
  }
}
