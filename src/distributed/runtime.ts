/**
 * The client side of the distributed executor: attempts become BullMQ jobs (chunks of attempts,
 * so a map of tiny tasks is not one Redis round trip each), results come back on this client's
 * own stream (no QueueEvents broadcast: with many clients each would read everyone's events).
 * Retries, timeouts, dependencies and cancellation stay in the shared scheduler; this file only
 * moves attempts and results.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  RedisLostError,
  SignatureError,
  WorkerCrashedError,
  withoutStack,
  fromEnvelope,
  toEnvelope,
  type ErrorEnvelope,
} from '../core/errors.js';
import { RemoteValue } from '../core/remote.js';
import type { Attempt, Runtime, RuntimeHost } from '../core/runtime.js';
import { canCross, type Boundary } from '../core/values.js';
import { connect, explainPermission, waitForRedis, type RedisTarget } from './connection.js';
import { ClientSession } from './session.js';
import type { TlsMaterial } from './tls.js';
import { batchParts, jobParts, resultParts, type Signer } from './signing.js';
import { ExplainService, describeClusterAttempt, type ClusterSlot } from './explain.js';
import type { Explanation } from '../core/explain.js';
import {
  bullPriority,
  decode,
  encode,
  eventsMaxLen,
  inlineLimitBytes,
  keys,
  maxPayloadBytes,
  queueName,
  resourceSignature,
  retentionSeconds,
  type BatchedResult,
  type JobData,
  type StoredRef,
  type WireAttempt,
  type WorkerInfo,
} from './wire.js';
import { ValueStore, lost } from './values.js';
import { Registry } from './registry.js';
import { StreamReader } from './streams.js';
import { SerializationError } from '../core/errors.js';

export interface DistributedRuntimeOptions {
  address: string;
  prefix: string;
  /** True while someone listens to events: workers then report every start. */
  wantsStarts: () => boolean;
  /** Live workers seen in the registry, for chunk sizing and warnings. */
  onWorkers?: (workers: WorkerInfo[]) => void;
  /** Signs every job and accepts only results signed with one of its secrets. */
  signer?: Signer;
  /** CA, client certificate and key for a rediss:// address. */
  tls?: TlsMaterial;
}

/** Attempts per job: big enough to amortise Redis, small enough to spread over workers. */
const maxChunk = 64;
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
  readonly #keys: ReturnType<typeof keys>;
  #host: RuntimeHost | undefined;
  #redis: Redis | undefined;
  #reader: Redis | undefined;
  readonly #queues = new Map<string, Queue>();
  /** The connection each queue was given (owned here, so closing never waits on BullMQ). */
  readonly #queueConnections: Redis[] = [];
  #session: ClientSession | undefined;
  /** Set once nothing can be sent any more (the local redis-server died, shutdown gave up). */
  #fatal: RedisLostError | undefined;
  #shutdownTimer: NodeJS.Timeout | undefined;
  readonly #inflight = new Map<number, Attempt>();
  /** Attempts waiting for the next flush, by queue. */
  #outbox = new Map<string, Attempt[]>();
  #flushScheduled = false;
  #closing = false;
  #readLoop: Promise<void> | undefined;
  #lastId = '0-0';
  #sincetrim = 0;
  #liveWorkers = 1;
  #registryTimer: NodeJS.Timeout | undefined;
  #knownSigs = new Set<string>();
  /** The worker registry: liveness, and workers joined and left since the last read. */
  #registry: Registry | undefined;
  /** A dashboard watches the cluster: publish this client's submissions and cancels. */
  #watched = false;
  #jobs = 0;
  #refilling = true;
  // ---- values stored in Redis (values.ts) ----
  #values: ValueStore | undefined;
  #scattered = 0;
  /** Scattered values still being written: jobs that may use them wait for these. */
  readonly #storing = new Set<Promise<void>>();
  /** Keys of this client's stored values not yet deleted. */
  readonly #storedKeys = new Set<string>();
  /** Deletes a stored value once nothing can use it: no future, no pending task holds its reference. */
  readonly #unreachable = new FinalizationRegistry<string>((key) => this.#release(key));
  #releasing: string[] = [];
  /** Answers `weft explain` for this client's tasks; stores failed tasks' explanations. */
  #explainService: ExplainService | undefined;

  constructor(options: DistributedRuntimeOptions) {
    this.#options = options;
    this.#keys = keys(options.prefix);
  }

  async start(host: RuntimeHost): Promise<void> {
    this.#host = host;
    this.#closing = false;
    const target: RedisTarget = { address: this.#options.address, tls: this.#options.tls };
    this.#redis = connect(target, `weft-client-${this.clientId}`);
    await waitForRedis(this.#redis, target, 15_000);
    this.#reader = connect(target, `weft-client-${this.clientId}-results`);
    // The client reads a value once (its RemoteValue keeps it): no byte cache here.
    this.#values = new ValueStore(this.#redis, this.#options.prefix, {
      signer: this.#options.signer,
      cacheBytes: 0,
    });
    this.#fatal = undefined;
    this.#session = new ClientSession({
      redis: this.#redis,
      target,
      prefix: this.#options.prefix,
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
      this.#redis.disconnect();
      throw explainPermission(error, 'The client could not join the cluster');
    }
    this.#registryTimer = setInterval(
      () => void this.#refreshRegistry().catch(() => undefined),
      2000,
    );
    this.#registryTimer.unref();
    this.#explainService = new ExplainService(
      this.#redis,
      this.#options.prefix,
      this.#options.signer,
    );
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
    const queue = queueName(resourceSignature(attempt.definition.options.resources));
    let list = this.#outbox.get(queue);
    if (!list) this.#outbox.set(queue, (list = []));
    list.push(attempt);
    this.#inflight.set(attempt.id, attempt);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  store(value: unknown, key: string): RemoteValue {
    let bytes: Buffer;
    try {
      bytes = encode(value);
    } catch (cause) {
      throw new SerializationError(
        `scatter(): the value cannot be serialized for the cluster (${(cause as Error).message}).`,
        'value',
        { cause },
      );
    }
    if (bytes.length > maxPayloadBytes)
      throw new SerializationError(
        `scatter(): the value is ${bytes.length} bytes once serialized, over the cluster's limit of ${maxPayloadBytes} bytes (Redis holds every value in memory). Pass a reference (a path or URL) instead of the data.`,
        'value',
      );
    const storeKey = this.#values!.key(this.clientId, `s${++this.#scattered}`);
    const writing = this.#values!.put(storeKey, bytes, retentionSeconds, value).catch(() => {
      // Its readers report the value as lost (ValueLostError), naming the scatter.
    });
    this.#storing.add(writing);
    void writing.then(() => this.#storing.delete(writing));
    return this.#remote({ k: storeKey, n: bytes.length }, key);
  }

  /** A reference to a value this client's work stored, deleted once unreachable. */
  #remote(ref: StoredRef, task: string): RemoteValue {
    const remote: RemoteValue = new RemoteValue(ref.k, task, ref.n, async () => {
      if (this.#closing || !this.#storedKeys.has(ref.k)) throw lost(remote);
      return this.#values!.get(remote);
    });
    this.#storedKeys.add(ref.k);
    this.#unreachable.register(remote, ref.k);
    return remote;
  }

  #release(key: string): void {
    if (!this.#storedKeys.delete(key) || this.#closing) return;
    this.#releasing.push(key);
    if (this.#releasing.length > 1) return;
    setImmediate(() => {
      const keys = this.#releasing;
      this.#releasing = [];
      if (!this.#closing) void this.#values!.delete(keys).catch(() => undefined);
    });
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
      const event = { type: 'cancelled', key: attempt.key, name: attempt.name, time: Date.now() };
      multi.xadd(k.events, 'MAXLEN', '~', String(eventsMaxLen), '*', 'e', JSON.stringify([event]));
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
    const lost = [...this.#inflight.values()];
    this.#inflight.clear();
    // A Redis that came back empty forgot the resource queues too: announce ours again.
    if (error.reason === 'state-lost' && this.#knownSigs.size > 0) {
      const multi = this.#redis!.multi().sadd(this.#keys.sigs, ...this.#knownSigs);
      for (const signature of this.#knownSigs)
        multi.publish(this.#keys.control, `sig ${signature}`);
      void multi.exec().catch(() => undefined);
    }
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
    const slot = attempt.slot as ClusterSlot | undefined;
    if (!this.#redis || this.#redis.status !== 'ready') return undefined;
    return describeClusterAttempt({
      redis: this.#redis,
      workersKey: this.#keys.workers,
      queue: slot ? this.#queues.get(slot.queue) : undefined,
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
    this.#explainService?.close();
    clearInterval(this.#registryTimer);
    clearInterval(this.#shutdownTimer);
    this.#shutdownTimer = undefined;
    for (const attempt of this.#inflight.values())
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
      if (live()) await within(this.#deleteValues(), 2 * closeStepMs);
    }
    session?.close();
    // Queues use connections of our own: when Redis is gone, dropping those is all there is.
    if (live())
      await within(Promise.all([...this.#queues.values()].map((q) => q.close())), closeStepMs);
    for (const connection of this.#queueConnections.splice(0)) connection.disconnect();
    this.#queues.clear();
    if (redis && live()) await within(redis.quit(), closeStepMs);
    redis?.disconnect();
  }

  /** Deletes every value this client's work stored: those it knows, and any it never heard of. */
  async #deleteValues(): Promise<void> {
    const known = [...this.#storedKeys];
    this.#storedKeys.clear();
    await this.#values!.delete(known);
    // Results of attempts cancelled while they ran are stored without the client hearing of them.
    const redis = this.#redis!;
    if ('nodes' in redis) return; // each shard would need its own SCAN; their TTL cleans them up
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(
        cursor,
        'MATCH',
        this.#values!.pattern(this.clientId),
        'COUNT',
        1000,
      );
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== '0');
  }

  // ---- sending ----------------------------------------------------------------------------

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const outbox = this.#outbox;
    this.#outbox = new Map();
    const wantsStarts = this.#options.wantsStarts();
    for (const [name, attempts] of outbox) {
      const live = attempts.filter((a) => this.#inflight.has(a.id));
      if (live.length === 0) continue;
      const queue = await this.#queue(name, live[0]!);
      // Spread a burst over the workers: about two chunks per worker, at most maxChunk each.
      const size = Math.max(
        1,
        Math.min(maxChunk, Math.ceil(live.length / (2 * this.#liveWorkers))),
      );
      const jobs: Parameters<Queue['addBulk']>[0] = [];
      const redis = this.#redis!;
      // Payloads are written one by one: on a Redis Cluster each key lives on its own shard.
      const stored: [string, Buffer][] = [];
      for (let i = 0; i < live.length; i += size) {
        const chunk = live.slice(i, i + size);
        const jobId = `${this.clientId}-${++this.#jobs}`;
        let payload: Buffer;
        try {
          payload = encode(chunk.map((a) => a.args));
        } catch (error) {
          for (const a of chunk) this.#fail(a, error);
          continue;
        }
        const data: JobData = {
          c: this.clientId,
          t: chunk.map((a): WireAttempt => ({
            i: a.id,
            k: a.key,
            n: a.number,
            ref: a.ref!,
            timed: a.timeoutMs !== undefined || wantsStarts,
            ...(a.storedInputs ? { v: 1 as const } : {}),
          })),
        };
        const signer = this.#options.signer;
        if (signer)
          data.s = signer.sign(
            jobParts(name, jobId, this.clientId, JSON.stringify(data.t), payload),
          );
        if (payload.length > maxPayloadBytes) {
          for (const a of chunk)
            this.#fail(
              a,
              new SerializationError(
                `The arguments of task '${a.name}' (key ${a.key}) are ${payload.length} bytes once serialized, over the cluster's limit of ${maxPayloadBytes} bytes (Redis holds every payload in memory). Pass a reference (a path or URL) instead of the data.`,
                'args',
              ),
            );
          continue;
        }
        if (payload.length <= inlineLimitBytes) data.p = payload.toString('base64');
        else {
          data.pk = this.#keys.arg(jobId);
          stored.push([data.pk, payload]);
        }
        const priority = Math.max(...chunk.map((a) => a.definition.options.priority));
        jobs.push({
          name: chunk[0]!.name,
          data,
          opts: {
            jobId,
            priority: bullPriority(priority),
            removeOnComplete: true,
            removeOnFail: { age: retentionSeconds, count: 1000 },
          },
        });
        for (const a of chunk) {
          a.slot = { queue: name, job: jobId } satisfies ClusterSlot;
          if (a.timeoutMs === undefined && !wantsStarts) this.#host!.started(a, 'cluster');
        }
      }
      if (this.#watched) {
        const now = Date.now();
        const submitted = live.map((a) => ({
          type: 'submitted',
          key: a.key,
          name: a.name,
          time: now,
          attempt: a.number,
        }));
        void redis
          .xadd(
            this.#keys.events,
            'MAXLEN',
            '~',
            String(eventsMaxLen),
            '*',
            'e',
            JSON.stringify(submitted),
          )
          .catch(() => undefined);
      }
      try {
        // Scattered values are in Redis before any job that names them.
        if (this.#storing.size > 0) await Promise.all(this.#storing);
        await Promise.all(
          stored.map(([key, bytes]) => redis.set(key, bytes, 'EX', retentionSeconds)),
        );
        if (jobs.length > 0) await queue.addBulk(jobs);
      } catch (error) {
        const explained = explainPermission(error, 'The client could not send tasks');
        for (const job of jobs)
          for (const wire of (job.data as JobData).t) {
            const a = this.#inflight.get(wire.i);
            if (a) this.#fail(a, explained);
          }
      }
    }
  }

  async #queue(name: string, sample: Attempt): Promise<Queue> {
    let queue = this.#queues.get(name);
    if (!queue) {
      // A connection of our own (BullMQ does not close those): closing never waits on BullMQ.
      const connection = connect(
        { address: this.#options.address, tls: this.#options.tls },
        `weft-client-${this.clientId}-${name}`,
      );
      this.#queueConnections.push(connection);
      queue = new Queue(name, {
        connection,
        prefix: this.#options.prefix,
        // weft reads results from its own stream; BullMQ's event stream only needs a short tail.
        streams: { events: { maxLen: 100 } },
      });
      queue.on('error', () => undefined);
      this.#queues.set(name, queue);
      const signature = resourceSignature(sample.definition.options.resources);
      if (signature && !this.#knownSigs.has(signature)) {
        this.#knownSigs.add(signature);
        await this.#redis!.multi()
          .sadd(this.#keys.sigs, signature)
          .publish(this.#keys.control, `sig ${signature}`)
          .exec();
      }
    }
    return queue;
  }

  #fail(attempt: Attempt, error: unknown): void {
    if (!this.#inflight.delete(attempt.id)) return;
    this.#host!.settled(attempt, { ok: false, error });
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
    let status = '';
    let worker = '';
    let value: Buffer | undefined;
    let batch: Buffer | undefined;
    let ids = '';
    let signature: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i]!.toString();
      const v = fields[i + 1]!;
      if (field === 'b') batch = v;
      else if (field === 'i') ids = v.toString();
      else if (field === 's') status = v.toString();
      else if (field === 'w') worker = v.toString();
      else if (field === 'v') value = v;
      else if (field === 'h') signature = v.toString();
    }
    const signer = this.#options.signer;
    if (batch) {
      // Nothing of a batch is decoded before its signature checks out.
      if (signer && !signer.verify(batchParts(this.clientId, worker, batch), signature)) {
        // The plain list of attempt ids says whom to tell (it can only make tasks fail).
        for (const id of ids.split(',')) {
          const attempt = this.#inflight.get(Number(id));
          if (!attempt) continue;
          this.#inflight.delete(attempt.id);
          this.#host!.settled(attempt, { ok: false, error: badResult(attempt, worker, signature) });
        }
        return;
      }
      let results: BatchedResult[];
      try {
        results = decode(batch) as BatchedResult[];
      } catch {
        return;
      }
      for (const [id, status, payload] of results)
        this.#onResult(
          id,
          status,
          worker,
          payload && Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
        );
      return;
    }
    // A single result in an entry of its own (also what tools and tests write).
    const id = Number(ids);
    const attempt = this.#inflight.get(id);
    if (
      attempt &&
      signer &&
      !signer.verify(
        resultParts(this.clientId, id, attempt.key, attempt.number, status, worker, value),
        signature,
      )
    ) {
      // A forged `started` changes nothing worth failing for; the real result still decides.
      if (status === 'started') return;
      this.#inflight.delete(id);
      this.#host!.settled(attempt, { ok: false, error: badResult(attempt, worker, signature) });
      return;
    }
    this.#onResult(id, status, worker, value);
  }

  /** One result for one attempt, its signature already checked. */
  #onResult(id: number, status: string, worker: string, value: Buffer | undefined): void {
    const attempt = this.#inflight.get(id);
    if (!attempt) {
      // The attempt was cancelled while it ran: nobody will read what it stored. (A second
      // report of an attempt that ran twice, its job taken again after a lost lock, names the
      // key the first one did: that value is in use.)
      if (status === 'ref' && value) void this.#dropRef(value);
      return;
    }
    const host = this.#host!;
    if (status === 'started') {
      host.started(attempt, worker);
      return;
    }
    this.#inflight.delete(id);
    try {
      if (worker) host.ranOn?.(attempt, worker);
      if (status === 'ok')
        host.settled(attempt, { ok: true, value: value ? decode(value) : undefined });
      else if (status === 'ref')
        host.settled(attempt, {
          ok: true,
          value: this.#remote(decode(value!) as StoredRef, attempt.key),
        });
      else
        host.settled(attempt, { ok: false, error: fromEnvelope(decode(value!) as ErrorEnvelope) });
    } catch (error) {
      host.settled(attempt, { ok: false, error });
    }
  }

  async #dropRef(payload: Buffer): Promise<void> {
    const ref = decode(payload) as StoredRef;
    if (
      typeof ref?.k === 'string' &&
      !this.#storedKeys.has(ref.k) &&
      ref.k.startsWith(this.#values!.pattern(this.clientId).slice(0, -1))
    )
      await this.#values!.delete([ref.k]).catch(() => undefined);
  }

  async #refreshRegistry(): Promise<void> {
    // One registry (and its joined/left memory) for the runtime's life, on its first connection.
    const registry = (this.#registry ??= new Registry(this.#redis!, this.#keys.workers));
    const snapshot = await registry.read({ key: this.#keys.watch, mode: 'check' });
    this.#watched = snapshot.watched;
    // A worker killed without a goodbye leaves its entry; drop it after a minute of silence.
    registry.forgetDead(snapshot);
    for (const event of registry.changes(snapshot)) this.#host?.workerEvent(event);
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

/** The error for a result that is unsigned or not signed with any of this client's secrets. */
function badResult(
  attempt: Attempt,
  worker: string,
  signature: string | undefined,
): SignatureError {
  // The worker name comes from Redis, unverified: show it only as a short, printable hint.
  const from = /^[\w.@:-]{1,100}$/.test(worker) ? `worker ${worker}` : 'an unnamed worker';
  return new SignatureError(
    signature === undefined
      ? `The result of task '${attempt.name}' (key ${attempt.key}) says it comes from ${from} and is unsigned, but this client has a secret, so it was rejected. Either that worker has no secret (give it the client's: weft worker --secret-file PATH or WEFT_SECRET), or someone wrote the result into Redis.`
      : `The result of task '${attempt.name}' (key ${attempt.key}) says it comes from ${from}, but it is not signed with any of this client's secrets, so it was rejected. Either that worker has another secret (give client and workers the same one; while rotating, give each both), or the result was forged or changed in Redis.`,
  );
}

/** Envelope an error for a stream entry (used by tests and tools that write results). */
export function envelope(error: unknown): ErrorEnvelope {
  return toEnvelope(error, (v) => canCross(v, 'process'));
}
