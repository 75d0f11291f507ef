/**
 * Reading and writing weft's Redis streams (see wire.ts): a client's result stream `P:out:<id>`
 * (workers write one entry per client per flush, the client reads) and the dashboard's event
 * stream `P:events` (workers and clients write while a dashboard watches, the watcher reads).
 *
 * Result batch entry (written by a worker, read by the client `P:out:<id>` belongs to):
 *   b   the v8 encoding of the `BatchedResult`s
 *   i   their attempt ids, comma-separated, in plain text (a client whose secret differs fails those)
 *   w   the worker's name
 *   h   with a secret: the worker's HMAC of the batch (signing.ts `batchParts`)
 * Event entry (written by workers and clients, read by the dashboard's watcher):
 *   e   a JSON array of `TaskEvent`s
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { TaskEvent } from '../core/events.js';
import { eventsMaxLen, keys, retentionSeconds } from './wire.js';

/** One stream entry as read: its id, and its fields as name, value, name, value... */
export type StreamEntry = [id: Buffer, fields: Buffer[]];

export interface StreamReaderOptions {
  /** The entry id to read after: `0-0` for the whole stream, `$` for entries added from now. */
  from: string;
  /** The most entries one read returns. */
  count: number;
  /** How long one read waits for entries, in milliseconds (default 1000). */
  blockMs?: number;
  /** Besides `stop()`: reading ends once this returns true (asked between reads). */
  isStopped?: () => boolean;
  /** Hears each failed read; the reader tries again 200 ms later. Default: quiet. */
  onError?: (error: unknown) => void;
}

/**
 * Reads one stream in a loop of blocking XREADs on a connection of its own (a blocked
 * connection can do nothing else), handing each read's entries on in order.
 */
export class StreamReader {
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #options: StreamReaderOptions;
  #lastId: string;
  #stopped = false;
  #loop: Promise<void> | undefined;

  /** `redis`: a connection only this reader uses; `stop()` disconnects it. */
  constructor(redis: Redis, stream: string, options: StreamReaderOptions) {
    this.#redis = redis;
    this.#stream = stream;
    this.#options = options;
    this.#lastId = options.from;
  }

  /** The id of the last entry handed on (the `from` option before any). */
  get lastId(): string {
    return this.#lastId;
  }

  /** Reads until stopped, calling `onEntries` with each read's entries; resolves once stopped. */
  read(onEntries: (entries: StreamEntry[]) => void): Promise<void> {
    return (this.#loop ??= this.#run(onEntries));
  }

  /** Stops reading: disconnects the reader's connection and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#redis.disconnect();
    await this.#loop?.catch(() => undefined);
  }

  #isStopped(): boolean {
    return this.#stopped || (this.#options.isStopped?.() ?? false);
  }

  async #run(onEntries: (entries: StreamEntry[]) => void): Promise<void> {
    const { count, blockMs = 1000, onError } = this.#options;
    while (!this.#isStopped()) {
      let reply: [Buffer, StreamEntry[]][] | null;
      try {
        reply = await this.#redis.xreadBuffer(
          'COUNT',
          count,
          'BLOCK',
          blockMs,
          'STREAMS',
          this.#stream,
          this.#lastId,
        );
      } catch (error) {
        if (this.#isStopped()) return;
        onError?.(error);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (!reply) continue;
      for (const [, entries] of reply) {
        const last = entries[entries.length - 1];
        if (!last) continue;
        this.#lastId = last[0].toString();
        onEntries(entries);
      }
    }
  }
}

/** The value of field `name` of a stream entry, or undefined. */
export function fieldOf(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2)
    if (fields[i]!.toString() === name) return fields[i + 1];
  return undefined;
}

/** What a worker writes to a client's result stream in one entry (see the header). */
export interface ResultBatchEntry {
  /** The v8 encoding of the `BatchedResult`s. */
  batch: Buffer;
  /** Their attempt ids, comma-separated. */
  ids: string;
  worker: string;
  /** With a secret: the HMAC of the batch. */
  signature?: string;
}

/**
 * Writes entries into a pipeline the caller executes, so that one round trip carries many:
 * result batches (each stream then lives `retentionSeconds` past its last write) and task events
 * (the stream capped near `eventsMaxLen` entries).
 */
export class StreamWriter {
  readonly #keys: ReturnType<typeof keys>;

  constructor(prefix: string) {
    this.#keys = keys(prefix);
  }

  /** Adds one result batch entry to `client`'s result stream. */
  addResults(pipeline: ChainableCommander, client: string, entry: ResultBatchEntry): void {
    const fields: (string | Buffer)[] = ['b', entry.batch, 'i', entry.ids, 'w', entry.worker];
    if (entry.signature !== undefined) fields.push('h', entry.signature);
    const stream = this.#keys.out(client);
    pipeline.xadd(stream, '*', ...fields);
    pipeline.expire(stream, retentionSeconds);
  }

  /** Adds one entry holding `events` to the dashboard's event stream. */
  addEvents(pipeline: ChainableCommander, events: readonly TaskEvent[]): void {
    pipeline.xadd(
      this.#keys.events,
      'MAXLEN',
      '~',
      String(eventsMaxLen),
      '*',
      'e',
      JSON.stringify(events),
    );
  }
}
