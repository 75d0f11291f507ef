/**
 * What the distributed executor keeps in Redis, and how values are encoded.
 *
 * Wire format: every argument list and result is `v8.serialize`d (the structured clone format,
 * the same that crosses a thread or an 'advanced' IPC channel), so Date, Map, Set, BigInt, typed
 * arrays and errors keep their types; BullMQ alone would JSON them. Errors travel as weft's own
 * envelope (name, message, stack, cause chain, own properties).
 *
 * Keys (P is the cluster prefix, `weft` by default, with a `{...}` hash tag for Redis Cluster):
 *   P:tasks, P:tasks-<sig>             BullMQ queues: one for tasks needing no resources, one per
 *                                      resource signature (`GPU=1,mem=4`). Written by clients,
 *                                      taken by workers.
 *   P':arg:<jobId>                     binary arguments of a chunk too big to inline in job data
 *                                      (P' is P without braces, so that on a Redis Cluster these
 *                                      spread over the shards)
 *                                      (client writes, worker deletes when the job completes; TTL).
 *   P:out:<clientId>                   stream of results for one client (workers XADD, the client
 *                                      XREADs and trims it, and deletes it at shutdown; TTL).
 *   P:cancelled:<clientId>             set of attempt ids the client cancelled before a worker took
 *                                      them (client SADDs, workers check; TTL).
 *   P:workers                          hash name -> JSON WorkerInfo, refreshed every 2 s by each
 *                                      worker; entries older than 10 s are dead.
 *   P:sigs                             set of resource signatures in use (clients add).
 *   P:watch                            exists (5 s TTL, refreshed) while a dashboard watches.
 *   P:client:<clientId>                a client's heartbeat: the cluster epoch it knows, set every
 *                                      2 s with a 10 s TTL (client writes; workers read: gone when
 *                                      absent). The same name is a pub/sub channel the client
 *                                      stays subscribed to: no subscriber for 3 s means its
 *                                      process died (workers ask PUBSUB NUMSUB; not on a Redis
 *                                      Cluster, where only the heartbeat counts).
 *   P:epoch                            random id of the cluster's state, created by the first
 *                                      client (SET NX). A client that finds it missing or changed
 *                                      knows Redis lost its state (restarted empty, flushed).
 *   P:events                           capped stream of task-event batches (JSON), written by
 *                                      workers and clients only while P:watch exists.
 *   channel P:control                  pub/sub: `cancel <clientId> <attemptId>`, `sig <signature>`,
 *                                      `gone <clientId>` (a client left: stop its work at once).
 *   channel P:explain                  pub/sub: `weft explain` asks, JSON { k: task key, r: reply
 *                                      key }; the client that holds the task answers.
 *   P:explain-reply:<id>               list: the answer, JSON { e: Explanation JSON, h: HMAC with
 *                                      a secret } (client RPUSHes, `weft explain` BLPOPs; 60 s TTL).
 *   P:explained:<taskKey>              the same JSON for a task that failed, written by its client
 *                                      when it fails, so it outlives the client (one day TTL).
 *
 * A job is a chunk of attempts of one client (map and bursts of submits travel together):
 *   JobData.c   client id (where results go)
 *   JobData.t   the attempts: id, key, attempt number, task ref, timed flag
 *   JobData.p   base64 v8 payload of every attempt's arguments, when small; else
 *   JobData.pk  the P:arg key holding it
 *   JobData.s   with a secret: the client's HMAC of the job (see signing.ts), checked by the
 *               worker before it decodes or runs anything
 * Result stream entries: a worker writes one entry per client per flush, `b` the v8 encoding of
 * its `BatchedResult`s, `i` their attempt ids (comma-separated, in plain text: a client whose
 * secret differs fails those), `w` the worker's name, `h` with a secret: the worker's HMAC of the batch
 * (see signing.ts), checked by the client before it decodes `b`. A single result may also come as
 * an entry of its own: `i` attempt id, `s` status (`started` | `ok` | `ref` | `error` |
 * `crashed`), `w` worker name, `v` v8 payload (the value, the error envelope, or for `ref` where
 * the value is stored: see values.ts), `h` with a secret: the worker's HMAC of the entry, checked
 * by the client before it decodes `v`.
 *   P':val:<clientId>:<id>             a result of 64 KiB or more, or a scattered value (values.ts)
 */
import { deserialize, serialize } from 'node:v8';
import type { TaskRef } from '../core/runtime.js';

export interface WireAttempt {
  /** Attempt id, unique per client. */
  i: number;
  /** Future key, for messages and events. */
  k: string;
  /** Attempt number (1-based). */
  n: number;
  ref: TaskRef;
  /** The client waits for a `started` entry (a timeout clock or a listener needs it). */
  timed: boolean;
  /** Some arguments are references to values stored in Redis (see values.ts): fetch them. */
  v?: 1;
}

export interface JobData {
  c: string;
  t: WireAttempt[];
  p?: string;
  pk?: string;
  s?: string;
}

/** `ref`: the value is stored in Redis; the entry's payload is a `StoredRef`. */
export type ResultStatus = 'started' | 'ok' | 'ref' | 'error' | 'crashed';

/** One result in a batch entry: attempt id, status, and the payload when there is one. */
export type BatchedResult = [id: number, status: ResultStatus, payload?: Uint8Array];

/** Where a `ref` result's value is: its key and size. */
export interface StoredRef {
  k: string;
  n: number;
}

/** What each worker publishes about itself in P:workers. */
export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  concurrency: number;
  resources: Record<string, number>;
  acceptsSource: boolean;
  /** Epoch ms of the last heartbeat. */
  seen: number;
  running: number;
}

/** Entries kept in the dashboard event stream (each holds a batch of events). */
export const eventsMaxLen = 10_000;
/** Payloads larger than this go to their own key instead of the job's JSON. */
export const inlineLimitBytes = 16 * 1024;
/** Refused at submit: Redis holds every payload in memory. */
export const maxPayloadBytes = 256 * 1024 * 1024;
/** A client refreshes its heartbeat this often... */
export const heartbeatMs = 2000;
/** ...and workers treat it as gone once the heartbeat is this old (the key's TTL). */
export const heartbeatTtlMs = 10_000;
/** A client connected nowhere (its presence channel has no subscriber) this long is gone. */
export const presenceGraceMs = 3000;

/** Retention of weft's own keys when nobody cleans them (a client or worker that vanished). */
export const retentionSeconds = 24 * 60 * 60;

export function encode(value: unknown): Buffer {
  return serialize(value);
}

export function decode(buffer: Buffer): unknown {
  return deserialize(buffer);
}

/** BullMQ queue name for a signature. Queue names may not contain ':'. */
export function queueName(signature: string): string {
  return signature ? `tasks-${signature.replace(/[^A-Za-z0-9_.=,-]/g, '_')}` : 'tasks';
}

/**
 * The queue of one worker's own tasks: those whose largest input it made (and keeps at hand).
 * Never clashes with `queueName`'s, which all start with `tasks`.
 */
export function workerQueueName(worker: string): string {
  return `worker.${worker.replace(/[^A-Za-z0-9_.=,-]/g, '_')}`;
}

/** BullMQ priority (1 highest .. 2^21) for weft's (higher first, default 0). */
export function bullPriority(priority: number): number {
  return Math.max(1, Math.min(2 ** 21 - 1, Math.round(2 ** 20 - priority)));
}

/** Redis key names under a prefix. */
export function keys(prefix: string) {
  // Argument payloads are the big values: outside the prefix's hash tag, so that on a Redis
  // Cluster they spread over the shards (they are only ever read and written one at a time).
  const bare = prefix.replace(/[{}]/g, '');
  return {
    arg: (jobId: string) => `${bare}:arg:${jobId}`,
    out: (clientId: string) => `${prefix}:out:${clientId}`,
    cancelled: (clientId: string) => `${prefix}:cancelled:${clientId}`,
    workers: `${prefix}:workers`,
    sigs: `${prefix}:sigs`,
    control: `${prefix}:control`,
    events: `${prefix}:events`,
    watch: `${prefix}:watch`,
    client: (clientId: string) => `${prefix}:client:${clientId}`,
    epoch: `${prefix}:epoch`,
    explain: `${prefix}:explain`,
    explained: (taskKey: string) => `${prefix}:explained:${taskKey}`,
    explainReply: (requestId: string) => `${prefix}:explain-reply:${requestId}`,
  };
}

/** Hides the password of a redis URL for logs and errors. */
export function redactAddress(address: string): string {
  // Not through URL: a cluster address (redis+cluster://a:1,b:2) is no URL. Greedy up to the
  // last '@', so that a password holding '@' is hidden whole.
  return address.replace(/^([a-z+]+:\/\/[^:@/]*:).*@/i, '$1***@');
}
