/**
 * A cluster worker's outbox: results and task events, written in batches. Every report made in
 * one turn of the event loop goes out in one pipeline (tiny tasks would otherwise cost a Redis
 * round trip each), as one signed stream entry per client (streams.ts has the entry's fields).
 */
import type { Redis } from 'ioredis';
import { toEnvelope } from '../core/errors.js';
import type { TaskEvent } from '../core/events.js';
import { canCross } from '../core/values.js';
import { allocatorHint } from './allocator.js';
import type { ClientWatch } from './client-watch.js';
import { batchParts, type Signer } from './signing.js';
import { StreamWriter } from './streams.js';
import { ValueStore, storeThresholdBytes } from './values.js';
import { EncodedResult } from '../pool/encoded.js';
import {
  encode,
  retentionSeconds,
  type BatchedResult,
  type ResultStatus,
  type StoredRef,
} from './wire.js';

/** Who an attempt's report goes to and which attempt it is. */
export interface ReportTarget {
  /** The client id: its result stream gets the report. */
  readonly client: string;
  /** The client's attempt id. */
  readonly id: number;
  /** The task key (names stored values). */
  readonly key: string;
  /** The attempt number. */
  readonly number: number;
}

export interface ResultOutboxOptions {
  redis: Redis;
  prefix: string;
  /** This worker's name, in every entry. */
  worker: string;
  /** With a secret: signs each entry. */
  signer: Signer | undefined;
  /** Reports for clients known to be gone are dropped. */
  clients: ClientWatch;
  /** Where large values go. */
  values: ValueStore;
  /** The worker's log (for a one-time hint about allocator settings). */
  log?: (line: string) => void;
}

/** Values this large make the allocator hint worth saying. */
const hintBytes = 1024 * 1024;

const crossable = (v: unknown): boolean => canCross(v, 'process');

export class ResultOutbox {
  readonly #options: ResultOutboxOptions;
  readonly #writer: StreamWriter;
  #results: { client: string; result: BatchedResult }[] = [];
  /** Task events for dashboards, kept only while `watched`. */
  #events: TaskEvent[] = [];
  /** The flush of this turn, once something was reported in it. */
  #flushing: Promise<void> | undefined;
  /** Whether a dashboard watches the cluster (`P:watch` exists), as the last heartbeat found. */
  watched = false;
  #hinted = false;

  constructor(options: ResultOutboxOptions) {
    this.#options = options;
    this.#writer = new StreamWriter(options.prefix);
  }

  /** Reports `status` with `payload` (v8-encoded here; none when undefined) for `to`. */
  report(to: ReportTarget, status: ResultStatus, payload?: unknown): Promise<void> {
    return this.#send(to, status, payload === undefined ? undefined : encode(payload));
  }

  /** Reports `error` (as an envelope) with `status` `error` or `crashed`. */
  reportError(
    to: ReportTarget,
    error: unknown,
    status: 'error' | 'crashed' = 'error',
  ): Promise<void> {
    return this.report(to, status, toEnvelope(error, crossable));
  }

  /**
   * Reports a task's value: inline when small; else stored in Redis (and kept in this worker's
   * cache for tasks that need it here), with only its reference on the client's stream.
   */
  async reportValue(to: ReportTarget, value: unknown): Promise<void> {
    const { clients, values } = this.#options;
    if (clients.isKnownGone(to.client)) return;
    // The pool encodes results itself (pool/encoded.ts).
    const bytes = value instanceof EncodedResult ? value.bytes : encode(value);
    if (bytes.length < storeThresholdBytes) return this.#send(to, 'ok', bytes);
    const ref: StoredRef = { k: values.key(to.client, to.id), n: bytes.length };
    if (bytes.length >= hintBytes && !this.#hinted) {
      this.#hinted = true;
      const hint = allocatorHint();
      if (hint) this.#options.log?.(hint);
    }
    await values.put(ref.k, bytes, retentionSeconds);
    return this.#send(to, 'ref', encode(ref));
  }

  /** Sends a task event to dashboards, if one watches. */
  emit(event: TaskEvent): void {
    if (!this.watched) return;
    this.#events.push(event);
    void this.#schedule();
  }

  #send(to: ReportTarget, status: ResultStatus, bytes: Buffer | undefined): Promise<void> {
    // Nobody reads a gone client's stream; writing would only keep it alive for a day.
    if (this.#options.clients.isKnownGone(to.client)) return Promise.resolve();
    this.#results.push({
      client: to.client,
      result: bytes ? [to.id, status, bytes] : [to.id, status],
    });
    return this.#schedule();
  }

  #schedule(): Promise<void> {
    return (this.#flushing ??= this.#flush());
  }

  async #flush(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const { redis, worker, signer } = this.#options;
    const batch = this.#results;
    const events = this.#events;
    this.#results = [];
    this.#events = [];
    this.#flushing = undefined;
    const pipeline = redis.pipeline();
    // One stream entry per client per flush, signed once: a signature per result cost the
    // client more than the rest of a tiny task's handling.
    const byClient = new Map<string, BatchedResult[]>();
    for (const { client, result } of batch) {
      let results = byClient.get(client);
      if (!results) byClient.set(client, (results = []));
      results.push(result);
    }
    for (const [client, results] of byClient) {
      const bytes = encode(results);
      this.#writer.addResults(pipeline, client, {
        batch: bytes,
        ids: results.map(([id]) => id).join(','),
        worker,
        signature: signer?.sign(batchParts(client, worker, bytes)),
      });
    }
    if (events.length > 0) this.#writer.addEvents(pipeline, events);
    await pipeline.exec();
  }
}
