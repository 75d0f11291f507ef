/**
 * What `explain` adds on a cluster, read from Redis on demand: where a sent attempt's job is
 * (waiting in its queue, or active and on which worker), which live workers could take it, and
 * when its worker last sent a heartbeat. Nothing here runs unless someone asks. And the client's
 * side of `weft explain` from another process (keys and messages in wire.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SignatureError } from '../core/errors.js';
import { formatDuration, type Explanation } from '../core/explain.js';
import type { Signer } from './signing.js';
import { describeOffers, resourceSignature, satisfies } from '../core/resources.js';
import { Registry, deadAfterMs } from './registry.js';
import { keys, retentionSeconds } from './wire.js';

/** Where a sent attempt is: the queue and job that carry it (the client keeps it in in-flight.ts). */
export interface ClusterSlot {
  queue: string;
  job: string;
}

export async function describeClusterAttempt(options: {
  redis: Redis;
  workersKey: string;
  queue: Queue | undefined;
  slot: ClusterSlot | undefined;
  /** The worker named by a `started` entry; `cluster` when the client was not told. */
  worker: string | undefined;
  need: Readonly<Record<string, number>>;
}): Promise<string | undefined> {
  const { redis, queue, slot, need } = options;
  let worker = options.worker === 'cluster' ? undefined : options.worker;
  const out: string[] = [];
  const { now, all: registry, live } = await new Registry(redis, options.workersKey).read();
  if (slot && queue) {
    const state = await queue.getJobState(slot.job);
    if (state === 'active' && !worker) worker = (await queue.getJob(slot.job))?.processedBy;
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') {
      out.push(
        `It waits in the cluster's queue ${slot.queue} (job ${slot.job}, ${state}): no worker has taken it yet.`,
      );
      const able = live.filter((w) => satisfies(w.resources, need));
      const signature = resourceSignature(need);
      if (able.length === 0) {
        const offers = describeOffers(live);
        out.push(
          signature
            ? `No live worker can ever offer what it needs (${signature}); the workers offer ${offers}. It waits until one joins: start one with weft worker --resources ${signature}.`
            : `No live worker is connected (${offers}). Start one with weft worker --address URL.`,
        );
      } else {
        const busy = able.map((w) => `${w.name} runs ${w.running} of ${w.concurrency}`).join(', ');
        out.push(
          `${able.length} live worker${able.length === 1 ? '' : 's'} can take it (${busy}); jobs ahead of it in the queue go first.`,
        );
      }
    } else if (state === 'active' && !worker) {
      out.push(`Its job ${slot.job} is active on a worker.`);
    }
  }
  if (worker) {
    const info = registry.find((w) => w.name === worker);
    if (!info) {
      out.push(
        `Worker ${worker} is not in the cluster's registry: it left or died. When its job's lock expires, another worker runs the task again.`,
      );
    } else {
      const ago = now - info.seen;
      out.push(
        `Worker ${worker} (host ${info.host}, pid ${info.pid}, running ${info.running} of ${info.concurrency}) last sent a heartbeat ${formatDuration(ago)} ago${ago >= deadAfterMs ? `, so it is probably dead (workers beat every 2 s); another worker takes its job once the lock expires` : ''}.`,
      );
    }
  }
  return out.length > 0 ? out.join(' ') : undefined;
}

/** A request on the P:explain channel. */
interface ExplainRequest {
  /** The task's key. */
  k: string;
  /** The list to RPUSH the answer to. */
  r: string;
}

/** What a client writes to a reply list or P:explained:<key>. */
interface StoredExplanation {
  /** The Explanation, as JSON. */
  e: string;
  /** With a secret: HMAC of the reply key (or the task key) and `e`. */
  h?: string;
}

/** How long a reply waits for `weft explain` to read it. */
const replyTtlSeconds = 60;
/** Failed tasks a client stores explanations of, at most, per session: bounds Redis memory. */
const maxStoredFailures = 10_000;

/**
 * The client's side of `weft explain`: answers requests for its own unsettled tasks (through
 * `answer`) and stores the explanation of each task that fails, for a day.
 */
export class ExplainService {
  readonly #redis: Redis;
  readonly #keys: ReturnType<typeof keys>;
  readonly #signer: Signer | undefined;
  #subscriber: Redis | undefined;
  #stored = 0;

  constructor(redis: Redis, prefix: string, signer: Signer | undefined) {
    this.#redis = redis;
    this.#keys = keys(prefix);
    this.#signer = signer;
  }

  /** Listens on P:explain with its own connection (a subscriber can send no other command). */
  async listen(
    subscriber: Redis,
    answer: (key: string) => Promise<Explanation> | undefined,
  ): Promise<void> {
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#keys.explain) return;
      let request: ExplainRequest;
      try {
        request = JSON.parse(message) as ExplainRequest;
      } catch {
        return;
      }
      if (typeof request.k !== 'string' || typeof request.r !== 'string') return;
      // Answer only into this cluster's reply lists, whatever the request names.
      if (!request.r.startsWith(this.#keys.explainReply(''))) return;
      const explained = answer(request.k);
      if (!explained) return;
      void explained
        .then((explanation) =>
          this.#redis
            .multi()
            .rpush(request.r, this.#seal(request.r, explanation))
            .expire(request.r, replyTtlSeconds)
            .exec(),
        )
        .catch(() => undefined);
    });
    await subscriber.subscribe(this.#keys.explain);
  }

  /** Stores a failed task's explanation for a day (at most maxStoredFailures per session). */
  store(key: string, explain: () => Promise<Explanation>): void {
    if (this.#stored >= maxStoredFailures) return;
    this.#stored++;
    const target = this.#keys.explained(key);
    void explain()
      .then((explanation) =>
        this.#redis.set(target, this.#seal(target, explanation), 'EX', retentionSeconds),
      )
      .catch(() => undefined);
  }

  close(): void {
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }

  #seal(where: string, explanation: Explanation): string {
    const e = JSON.stringify(explanation);
    const stored: StoredExplanation = { e };
    if (this.#signer) stored.h = this.#signer.sign(['explain', where, e]);
    return JSON.stringify(stored);
  }
}

/** Reads a sealed explanation; throws SignatureError when a secret is given and it does not verify. */
export function unseal(where: string, raw: string, signer: Signer | undefined): Explanation {
  const stored = JSON.parse(raw) as StoredExplanation;
  if (signer && !signer.verify(['explain', where, stored.e], stored.h)) {
    throw new SignatureError(
      stored.h === undefined
        ? 'The explanation found in Redis is unsigned, but you gave a secret: the client that wrote it has none, or someone else wrote it. Drop --secret-file, or give the client the same secret.'
        : 'The explanation found in Redis is not signed with any of your secrets: the client that wrote it has another secret, or it was forged. Pass the client’s secret with --secret-file.',
    );
  }
  return JSON.parse(stored.e) as Explanation;
}

/**
 * `weft explain`'s side: asks the clients (the one holding the task answers within `waitMs`),
 * else reads the explanation a client stored when the task failed. Undefined: nobody knows it.
 */
export async function requestExplanation(
  redis: Redis,
  prefix: string,
  key: string,
  signer: Signer | undefined,
  waitMs = 3_000,
): Promise<Explanation | undefined> {
  const k = keys(prefix);
  const reply = k.explainReply(randomUUID());
  const listeners = await redis.publish(k.explain, JSON.stringify({ k: key, r: reply }));
  if (listeners > 0) {
    const answer = await redis.blpop(reply, waitMs / 1000);
    if (answer) return unseal(reply, answer[1], signer);
  }
  const target = k.explained(key);
  const stored = await redis.get(target);
  return stored === null ? undefined : unseal(target, stored, signer);
}
