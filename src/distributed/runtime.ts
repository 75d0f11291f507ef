/**
 * The client side of the distributed executor: attempts become BullMQ jobs (chunks of attempts,
 * so a map of tiny tasks is not one Redis round trip each: sender.ts), results come back on this
 * client's own stream (no QueueEvents broadcast: with many clients each would read everyone's
 * events; results.ts decodes them). Retries, timeouts, dependencies and cancellation stay in the
 * shared scheduler; this runtime only moves attempts and results, and owns the connections.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  RedisLostError,
  WorkerCrashedError,
  withoutStack,
  toEnvelope,
  type ErrorEnvelope,
} from '../core/errors.js';
import type { RemoteValue } from '../core/remote.js';
import type { Attempt, Runtime, RuntimeHost } from '../core/runtime.js';
import { canCross, type Boundary } from '../core/values.js';
import { ClientValues } from './client-values.js';
import { connect, explainPermission, waitForRedis, type RedisTarget } from './connection.js';
import { ClientSession } from './session.js';
import { Signer } from './signing.js';
import { ExplainService, describeClusterAttempt } from './explain.js';
import type { Explanation } from '../core/explain.js';
import { InFlight } from './in-flight.js';
import { Results } from './results.js';
import { Sender } from './sender.js';
import type { ClientSettings } from './settings.js';
import { keys, retentionSeconds, type WorkerInfo } from './wire.js';
import { Registry } from './registry.js';
import { StreamReader, StreamWriter } from './streams.js';

export interface DistributedRuntimeOptions {
  /** The executor's validated settings. */
  settings: ClientSettings;
  /** The cluster's Redis: the settings' address, or the local cluster's own once started. */
  address: string;
  /** Live workers seen in the registry (read every 2 s), for the resource check at submit. */
  onWorkers?: (workers: WorkerInfo[]) => void;
}

/**
 * Attempts sent and not yet answered, at most. Measured on a 200,000-task map: 16,384 peaked at
 * 343 MB of client heap, 4,096 at 286–293 MB and ran as fast (41k tasks/s), 2,048 no lower.
 */
const maxInflight = 4_096;
/** `shutdown()` waits this long for an unreachable Redis before failing what it cannot settle. */
export const shutdownRedisGraceMs = 5000;
/** Each step of closing that talks to Redis gets at most this long. */
const closeStepMs = 2000;

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]).finally(() => clearTimeout(timer));
}

export class DistributedRuntime implements Runtime {
  readonly boundary: Boundary = 'process';
  readonly immediate = false;
  readonly clientId = randomUUID();
  readonly #options: DistributedRuntimeOptions;
  readonly #target: RedisTarget;
  readonly #prefix: string;
  readonly #signer: Signer | undefined;
  readonly #keys: ReturnType<typeof keys>;
  #host: RuntimeHost | undefined;
  #redis: Redis | undefined;
  #reader: Redis | undefined;
  #session: ClientSession | undefined;
  /** Set once nothing can be sent any more (the local redis-server died, shutdown gave up). */
  #fatal: RedisLostError | undefined;
  #shutdownTimer: NodeJS.Timeout | undefined;
  /** Attempts handed over and not settled, with the job that carries each once sent. */
  readonly #inflight = new InFlight();
  #sender: Sender | undefined;
  #results: Results | undefined;
  /** Values stored in Redis: scattered, or results workers stored (client-values.ts). */
  #values: ClientValues | undefined;
  #closing = false;
  #readLoop: Promise<void> | undefined;
  #lastId = '0-0';
  #sincetrim = 0;
  #liveWorkers = 1;
  #registryTimer: NodeJS.Timeout | undefined;
  /** The worker registry: liveness, and workers joined and left since the last read. */
  #registry: Registry | undefined;
  /** Writes this client's dashboard events (cancels). */
  readonly #events: StreamWriter;
  /** Names of the workers alive at the last read of the registry. */
  #liveNames = new Set<string>();
  /** A dashboard watches the cluster: publish this client's submissions and cancels. */
  #watched = false;
  #refilling = true;
  /** Answers `weft explain` for this client's tasks; stores failed tasks' explanations. */
  #explainService: ExplainService | undefined;

  constructor(options: DistributedRuntimeOptions) {
    const { settings } = options;
    this.#options = options;
    this.#target = {
      address: options.address,
      tls: settings.cluster.kind === 'remote' ? settings.cluster.tls : undefined,
    };
    this.#prefix = settings.prefix;
    this.#signer = settings.secrets ? new Signer(settings.secrets) : undefined;
    this.#keys = keys(settings.prefix);
    this.#events = new StreamWriter(settings.prefix);
  }

  async start(host: RuntimeHost): Promise<void> {
    this.#host = host;
    this.#closing = false;
    const target = this.#target;
    const redis = connect(target, `weft-client-${this.clientId}`);
    this.#redis = redis;
    await waitForRedis(redis, target, 15_000);
    this.#reader = connect(target, `weft-client-${this.clientId}-results`);
    const values = new ClientValues(redis, this.#prefix, this.clientId, this.#signer);
    this.#values = values;
    const parts = { clientId: this.clientId, signer: this.#signer, inflight: this.#inflight };
    this.#sender = new Sender({
      ...parts,
      target,
      prefix: this.#prefix,
      redis,
      values,
      host,
      state: () => ({
        workerSlots: this.#liveWorkers,
        watched: this.#watched,
        reportStarts: host.hasListeners === true,
      }),
      isLive: (worker) => this.#liveNames.has(worker),
    });
    this.#results = new Results({ ...parts, values, host });
    this.#fatal = undefined;
    this.#session = new ClientSession({
      redis,
      target,
      prefix: this.#prefix,
      clientId: this.clientId,
      warn: (message) => host.warning(message),
      lost: (error) => this.#lose(error),
      pending: () => this.#inflight.size,
    });
    try {
      await this.#session.start();
      await this.#refreshRegistry();
    } catch (error) {
      this.#session.close();
      this.#reader.disconnect();
      redis.disconnect();
      throw explainPermission(error, 'The client could not join the cluster');
    }
    this.#registryTimer = setInterval(
      () => void this.#refreshRegistry().catch(() => undefined),
      2000,
    );
    this.#registryTimer.unref();
    this.#explainService = new ExplainService(redis, this.#prefix, this.#signer);
    await this.#explainService
      .listen(connect(target, `weft-client-${this.clientId}-explain`), (key) =>
        host.explainKey?.(key),
      )
      .catch(() => undefined);
    this.#readLoop = this.#read();
  }

  /**
   * Attempts in Redis at once. A bound keeps a 200,000-task map from holding every job, payload
   * and attempt in memory at the same time (client and Redis); the rest wait in the scheduler.
   */
  capacity(): number {
    // Refill in bursts (below half the bound) so that jobs stay full chunks, not one task each.
    const inflight = this.#inflight.size;
    if (this.#refilling && inflight >= maxInflight) this.#refilling = false;
    else if (!this.#refilling && inflight <= maxInflight / 2) this.#refilling = true;
    return this.#refilling ? maxInflight - inflight : 0;
  }

  run(attempt: Attempt): void {
    if (this.#fatal) {
      this.#host!.settled(attempt, { ok: false, error: lostError(attempt, this.#fatal) });
      return;
    }
    this.#inflight.add(attempt);
    this.#sender!.add(attempt);
  }

  store(value: unknown, key: string): RemoteValue {
    return this.#values!.store(value, key);
  }

  abort(attempt: Attempt, _reason: Error): void {
    if (!this.#inflight.delete(attempt.id)) return;
    const redis = this.#redis!;
    const k = this.#keys;
    const multi = redis
      .multi()
      .sadd(k.cancelled(this.clientId), String(attempt.id))
      .expire(k.cancelled(this.clientId), retentionSeconds)
      .publish(k.control, `cancel ${this.clientId} ${attempt.id}`);
    if (this.#watched) {
      this.#events.addEvents(multi, [
        { type: 'cancelled', key: attempt.key, name: attempt.name, time: Date.now() },
      ]);
    }
    void multi.exec().catch(() => undefined);
    // The scheduler has settled the task; the worker stops it (signal, then its pool worker).
    this.#host!.settled(attempt, { ok: false, error: _reason });
  }

  /**
   * With `cancelPending`, tells the workers at once that this client is leaving. From here on,
   * an unreachable Redis must not hold the shutdown forever: once it has been gone
   * for `shutdownRedisGraceMs` (counted from the shutdown at the earliest), every attempt still
   * in flight fails with a `RedisLostError` saying so, and so does anything sent after.
   */
  beginShutdown(cancelPending: boolean): void {
    const session = this.#session;
    if (!session || this.#shutdownTimer) return;
    // Workers hear it before the cancels of single tasks, and stop all of this client's work in
    // one go (queued first, so that no queued task takes the slot of an aborted one).
    if (cancelPending && this.#redis?.status === 'ready')
      void session.goodbye().catch(() => undefined);
    session.hold();
    const since = Date.now();
    this.#shutdownTimer = setInterval(() => {
      const down = Math.min(session.downForMs, Date.now() - since);
      if (this.#fatal || down < shutdownRedisGraceMs) return;
      this.#lose(
        new RedisLostError(
          `shutdown() waited ${(down / 1000).toFixed(1)} s for Redis at ${session.address}, which stayed unreachable, so the task's result can no longer be collected (it may still run on a worker).`,
          'unreachable',
        ),
        true,
      );
    }, 250);
  }

  /** The local cluster's redis-server exited: everything sent is gone, and nothing can be sent. */
  serverExited(how: string): void {
    if (this.#closing) return;
    this.#lose(
      new RedisLostError(
        `The local cluster's redis-server ${how}, taking the queued tasks and their results with it. Nothing more can run on this executor: shut it down and start it again.`,
        'server-exited',
      ),
      true,
    );
  }

  /**
   * Fails every attempt in flight with `error` (each gets its own message naming the task), and
   * asks workers not to run them should their jobs still exist. `fatal`: later attempts too.
   */
  #lose(error: RedisLostError, fatal = false): void {
    if (fatal) this.#fatal = error;
    const lost = this.#inflight.takeAll();
    // A Redis that came back empty forgot the resource queues too: announce ours again.
    if (error.reason === 'state-lost') this.#sender!.announceAgain();
    if (lost.length > 0 && !fatal) {
      const k = this.#keys;
      const multi = this.#redis!.multi().sadd(
        k.cancelled(this.clientId),
        ...lost.map((a) => String(a.id)),
      );
      for (const a of lost) multi.publish(k.control, `cancel ${this.clientId} ${a.id}`);
      void multi.exec().catch(() => undefined);
    }
    for (const attempt of lost)
      this.#host!.settled(attempt, { ok: false, error: lostError(attempt, error) });
  }

  /** For explain: where the attempt's job is, who runs it, that worker's last heartbeat. */
  async explain(attempt: Attempt, worker: string | undefined): Promise<string | undefined> {
    const slot = this.#inflight.slot(attempt.id);
    if (!this.#redis || this.#redis.status !== 'ready') return undefined;
    return describeClusterAttempt({
      redis: this.#redis,
      workersKey: this.#keys.workers,
      queue: slot ? this.#sender?.queue(slot.queue) : undefined,
      slot,
      worker,
      need: attempt.definition.options.resources,
    }).catch(() => undefined);
  }

  taskFailed(key: string, explain: () => Promise<Explanation>): void {
    this.#explainService?.store(key, explain);
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#values?.close();
    this.#explainService?.close();
    clearInterval(this.#registryTimer);
    clearInterval(this.#shutdownTimer);
    this.#shutdownTimer = undefined;
    for (const attempt of this.#inflight.attempts())
      this.#host!.settled(attempt, {
        ok: false,
        error: new WorkerCrashedError('The client shut down.', {}),
      });
    this.#inflight.clear();
    const redis = this.#redis;
    const session = this.#session;
    // Commands wait through reconnects (maxRetriesPerRequest: null): only talk to a live server,
    // and never longer than closeStepMs a step.
    // Asked before every step: Redis may have died just now, and ioredis notices only when its
    // socket closes (a step that timed out is usually when it has).
    const live = (): boolean => redis?.status === 'ready' && !this.#fatal;
    this.#reader?.disconnect();
    // A read queued while Redis is away never settles once disconnected: do not wait for it then.
    if (live()) await within(this.#readLoop ?? Promise.resolve(), closeStepMs);
    if (redis && live()) {
      await within(
        Promise.all([
          session?.goodbye(),
          redis.del(this.#keys.out(this.clientId), this.#keys.cancelled(this.clientId)),
        ]),
        closeStepMs,
      );
      // Stored values: a big client's SCAN may take a while, and their TTL cleans up the rest.
      if (this.#values && live()) await within(this.#values.deleteAll(), 2 * closeStepMs);
    }
    session?.close();
    // Queues use connections of our own: when Redis is gone, dropping those is all there is.
    if (this.#sender && live()) await within(this.#sender.closeQueues(), closeStepMs);
    this.#sender?.disconnect();
    if (redis && live()) await within(redis.quit(), closeStepMs);
    redis?.disconnect();
  }

  // ---- receiving --------------------------------------------------------------------------

  async #read(): Promise<void> {
    const stream = this.#keys.out(this.clientId);
    const results = new StreamReader(this.#reader!, stream, {
      from: this.#lastId,
      count: 2000,
      isStopped: () => this.#closing,
    });
    await results.read((entries) => {
      this.#lastId = results.lastId;
      for (const [, fields] of entries) this.#onEntry(fields);
      this.#sincetrim += entries.length;
      if (this.#sincetrim > 1000) {
        this.#sincetrim = 0;
        void this.#redis!.xtrim(stream, 'MINID', this.#lastId).catch(() => undefined);
      }
    });
  }

  #onEntry(fields: Buffer[]): void {
    this.#results!.accept(fields);
  }

  async #refreshRegistry(): Promise<void> {
    // One registry (and its joined/left memory) for the runtime's life, on its first connection.
    const registry = (this.#registry ??= new Registry(this.#redis!, this.#keys.workers));
    const snapshot = await registry.read({ key: this.#keys.watch, mode: 'check' });
    this.#watched = snapshot.watched;
    // A worker killed without a goodbye leaves its entry; drop it after a minute of silence.
    registry.forgetDead(snapshot);
    this.#liveNames = new Set(snapshot.live.map((w) => w.name));
    for (const event of registry.changes(snapshot)) {
      this.#host?.workerEvent(event);
      // Its own queue has no taker any more: what waits there goes to the common queue.
      if (event.type === 'left') this.#sender?.rehome(event.worker);
    }
    this.#liveWorkers = Math.max(
      1,
      snapshot.live.reduce((n, w) => n + w.concurrency, 0),
    );
    this.#options.onWorkers?.(snapshot.live);
  }
}

/** `error` for one attempt: same class and reason, with the task named. */
function lostError(attempt: Attempt, error: RedisLostError): RedisLostError {
  return withoutStack(
    () =>
      new RedisLostError(
        `Task '${attempt.name}' (key ${attempt.key}) was lost: ${error.message}`,
        error.reason,
      ),
  );
}

/** Envelope an error for a stream entry (used by tests and tools that write results). */
export function envelope(error: unknown): ErrorEnvelope {
  return toEnvelope(error, (v) => canCross(v, 'process'));
}
