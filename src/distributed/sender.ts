/**
 * Sending attempts: those handed over in one turn of the event loop gather in an outbox, then go
 * out as BullMQ jobs of up to `maxChunk` attempts each (a map of tiny tasks is not one Redis round
 * trip each), one queue per resource signature. The job payload is described in wire.ts.
 *
 * Data affinity: a task that needs no resources and takes stored values (results a worker kept in
 * Redis) goes to the own queue of the worker that made the largest of them, while that worker is
 * alive: it has the value at hand, so the task pays no fetch. When that worker leaves, what waits
 * in its queue goes back to the common one (`rehome`).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SerializationError } from '../core/errors.js';
import type { Attempt, RuntimeHost } from '../core/runtime.js';
import { ChunkedSet } from './chunked-set.js';
import type { ClientValues } from './client-values.js';
import { connect, explainPermission, type RedisTarget } from './connection.js';
import type { ClusterSlot } from './explain.js';
import type { InFlight } from './in-flight.js';
import { jobParts, type Signer } from './signing.js';
import {
  bullPriority,
  encode,
  inlineLimitBytes,
  keys,
  maxPayloadBytes,
  queueName,
  retentionSeconds,
  workerQueueName,
  type JobData,
  type WireAttempt,
} from './wire.js';
import { resourceSignature } from '../core/resources.js';
import { RemoteValue } from '../core/remote.js';
import { substituteWhere } from '../core/values.js';
import { StreamWriter } from './streams.js';

/** Attempts per job: big enough to amortise Redis, small enough to spread over workers. */
const maxChunk = 64;

/** What the cluster looks like now (the registry is read every 2 s). */
export interface SendState {
  /** Tasks the live workers run at once (the sum of their concurrency), at least 1. */
  workerSlots: number;
  /** A dashboard watches the cluster: publish this client's submissions. */
  watched: boolean;
  /** Someone listens to the executor's events: workers must report every start. */
  reportStarts: boolean;
}

export interface SenderOptions {
  clientId: string;
  target: RedisTarget;
  prefix: string;
  signer: Signer | undefined;
  /** The client's command connection. */
  redis: Redis;
  /** Attempts handed over; those no longer in it by the flush (aborted) are not sent. */
  inflight: InFlight;
  values: ClientValues;
  host: RuntimeHost;
  state(): SendState;
  /** True while `worker` is in the registry (it takes from its own queue). */
  isLive(worker: string): boolean;
}

export class Sender {
  readonly #o: SenderOptions;
  readonly #keys: ReturnType<typeof keys>;
  readonly #queues = new Map<string, Queue>();
  /** The connection each queue was given (owned here, so closing never waits on BullMQ). */
  readonly #queueConnections: Redis[] = [];
  /** Resource signatures this client announced (P:sigs), so that workers listen to their queues. */
  readonly #knownSigs = new Set<string>();
  /** Attempts waiting for the next flush, by queue. */
  #outbox = new Map<string, Attempt[]>();
  /** Workers' own queues this client sent to, and whose they are. */
  readonly #homes = new Map<string, string>();
  #flushScheduled = false;
  #jobs = 0;

  /** Writes dashboard events (`submitted`) when a dashboard watches. */
  readonly #events: StreamWriter;

  constructor(options: SenderOptions) {
    this.#o = options;
    this.#keys = keys(options.prefix);
    this.#events = new StreamWriter(options.prefix);
  }

  /** Sends `attempt` with the others handed over in this turn of the event loop. */
  add(attempt: Attempt): void {
    const signature = resourceSignature(attempt.definition.options.resources);
    const home = signature === '' && attempt.storedInputs ? this.#home(attempt) : undefined;
    let queue: string;
    if (home) {
      queue = workerQueueName(home);
      this.#homes.set(queue, home);
    } else queue = queueName(signature);
    let list = this.#outbox.get(queue);
    if (!list) this.#outbox.set(queue, (list = []));
    list.push(attempt);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  /**
   * `worker` left: the attempts sent to its own queue go to the common one, since nobody else
   * takes from its queue. Those it had started are run again too (it died with them, or it was
   * only late to beat and its result, if it comes, is taken whichever arrives first).
   */
  rehome(worker: string): void {
    const name = workerQueueName(worker);
    const queue = this.#queues.get(name);
    if (!queue) return;
    const { inflight, host } = this.#o;
    const jobs = new Set<string>();
    const moved: Attempt[] = [];
    for (const attempt of inflight.attempts()) {
      const slot = inflight.slot(attempt.id);
      if (slot?.queue !== name) continue;
      jobs.add(slot.job);
      moved.push(attempt);
    }
    for (const job of jobs) void queue.remove(job).catch(() => undefined);
    for (const attempt of moved) {
      inflight.delete(attempt.id);
      host.requeue(attempt);
    }
  }

  /** The live worker that made the largest stored value among the attempt's arguments. */
  #home(attempt: Attempt): string | undefined {
    let best: RemoteValue | undefined;
    substituteWhere(
      attempt.args,
      (v): v is RemoteValue => v instanceof RemoteValue,
      (remote) => {
        if (remote.worker && (!best || remote.bytes > best.bytes)) best = remote;
        return remote;
      },
    );
    const worker = best?.worker;
    return worker !== undefined && this.#o.isLive(worker) ? worker : undefined;
  }

  /** The queue of that name, once this client sent a job to it. */
  queue(name: string): Queue | undefined {
    return this.#queues.get(name);
  }

  /** Announces this client's resource queues again (to a Redis that came back empty). */
  announceAgain(): void {
    if (this.#knownSigs.size === 0) return;
    const multi = this.#o.redis.multi().sadd(this.#keys.sigs, ...this.#knownSigs);
    for (const signature of this.#knownSigs) multi.publish(this.#keys.control, `sig ${signature}`);
    void multi.exec().catch(() => undefined);
  }

  /** Closes the queues (talks to Redis: only call it while Redis is there). */
  closeQueues(): Promise<unknown> {
    return Promise.all([...this.#queues.values()].map((q) => q.close()));
  }

  /** Drops the queues' connections, whether or not they were closed. */
  disconnect(): void {
    for (const connection of this.#queueConnections.splice(0)) connection.disconnect();
    this.#queues.clear();
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const outbox = this.#outbox;
    this.#outbox = new Map();
    const { reportStarts } = this.#o.state();
    const { clientId, signer, inflight, host } = this.#o;
    for (const [chosen, attempts] of outbox) {
      const live = attempts.filter((a) => inflight.has(a.id));
      if (live.length === 0) continue;
      // A worker that left since: its queue has no taker any more.
      const home = this.#homes.get(chosen);
      const name = home !== undefined && !this.#o.isLive(home) ? queueName('') : chosen;
      const queue = await this.#queue(name, live[0]!);
      const { workerSlots, watched } = this.#o.state();
      // Spread a burst over the workers: about two chunks per worker, at most maxChunk each.
      const size = Math.max(1, Math.min(maxChunk, Math.ceil(live.length / (2 * workerSlots))));
      const jobs: Parameters<Queue['addBulk']>[0] = [];
      const redis = this.#o.redis;
      // Payloads are written one by one: on a Redis Cluster each key lives on its own shard.
      const stored: [string, Buffer][] = [];
      for (let i = 0; i < live.length; i += size) {
        const chunk = live.slice(i, i + size);
        const jobId = `${clientId}-${++this.#jobs}`;
        let payload: Buffer;
        try {
          payload = encode(chunk.map((a) => a.args));
        } catch (error) {
          for (const a of chunk) this.#fail(a, error);
          continue;
        }
        const data: JobData = {
          c: clientId,
          t: chunk.map((a): WireAttempt => ({
            i: a.id,
            k: a.key,
            n: a.number,
            ref: a.ref!,
            timed: a.timeoutMs !== undefined || reportStarts,
            ...(a.storedInputs ? { v: 1 as const } : {}),
          })),
        };
        if (signer)
          data.s = signer.sign(jobParts(name, jobId, clientId, JSON.stringify(data.t), payload));
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
        const slot: ClusterSlot = { queue: name, job: jobId };
        for (const a of chunk) {
          inflight.sent(a.id, slot);
          if (a.timeoutMs === undefined && !reportStarts) host.started(a, 'cluster');
        }
      }
      if (watched) {
        const now = Date.now();
        const pipeline = redis.pipeline();
        this.#events.addEvents(
          pipeline,
          live.map((a) => ({
            type: 'submitted',
            key: a.key,
            name: a.name,
            time: now,
            attempt: a.number,
          })),
        );
        void pipeline.exec().catch(() => undefined);
      }
      try {
        // Scattered values are in Redis before any job that names them.
        const scattering = this.#o.values.written();
        if (scattering) await scattering;
        await Promise.all(
          stored.map(([key, bytes]) =>
            redis.sendCommand(new ChunkedSet(key, [bytes], retentionSeconds)),
          ),
        );
        if (jobs.length > 0) await queue.addBulk(jobs);
      } catch (error) {
        const explained = explainPermission(error, 'The client could not send tasks');
        for (const job of jobs)
          for (const wire of (job.data as JobData).t) {
            const a = inflight.get(wire.i);
            if (a) this.#fail(a, explained);
          }
      }
    }
  }

  async #queue(name: string, sample: Attempt): Promise<Queue> {
    let queue = this.#queues.get(name);
    if (!queue) {
      // A connection of our own (BullMQ does not close those): closing never waits on BullMQ.
      const connection = connect(this.#o.target, `weft-client-${this.#o.clientId}-${name}`);
      this.#queueConnections.push(connection);
      queue = new Queue(name, {
        connection,
        prefix: this.#o.prefix,
        // weft reads results from its own stream; BullMQ's event stream only needs a short tail.
        streams: { events: { maxLen: 100 } },
      });
      queue.on('error', () => undefined);
      this.#queues.set(name, queue);
      const signature = resourceSignature(sample.definition.options.resources);
      if (signature && !this.#knownSigs.has(signature)) {
        this.#knownSigs.add(signature);
        await this.#o.redis
          .multi()
          .sadd(this.#keys.sigs, signature)
          .publish(this.#keys.control, `sig ${signature}`)
          .exec();
      }
    }
    return queue;
  }

  #fail(attempt: Attempt, error: unknown): void {
    if (!this.#o.inflight.delete(attempt.id)) return;
    this.#o.host.settled(attempt, { ok: false, error });
  }
}
