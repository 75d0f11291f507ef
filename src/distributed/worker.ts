/**
 * A cluster worker (`weft worker`): takes chunks of tasks from BullMQ queues and runs them on a
 * local pool, so user code never runs on the event loop that renews BullMQ's job locks (a
 * blocked loop would let another worker take the same job). Results go to each client's own
 * stream. Resources: the worker takes from the queue of every resource signature it can satisfy,
 * and admits a task only while its own resources have room (BullMQ has no resource matching).
 */
import { existsSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type Job } from 'bullmq';
import {
  SignatureError,
  TaskCancelledError,
  TaskDefinitionError,
  WorkerCrashedError,
  describeError,
  toEnvelope,
} from '../core/errors.js';
import type { TaskEvent } from '../core/events.js';
import type { Attempt, Outcome, RuntimeHost, TaskRef } from '../core/runtime.js';
import { importModule } from '../core/modules.js';
import { replaceMarkers, type RefMarker } from '../core/remote.js';
import { optionDefaults } from '../core/options.js';
import { definitionOf, projectRoot } from '../core/task.js';
import { canCross } from '../core/values.js';
import { WorkerPoolRuntime } from '../pool/runtimes/workers.js';
import { EncodedResult, encodedArgument } from '../pool/encoded.js';
import {
  bullConnection,
  connect,
  isCluster,
  explainPermission,
  waitForRedis,
  type RedisTarget,
} from './connection.js';
import { effectivePrefix } from './address.js';
import { ClientWatch } from './client-watch.js';
import { resolveTls, type TlsOptions } from './tls.js';
import { batchParts, checkJob, Signer } from './signing.js';
import {
  decode,
  encode,
  eventsMaxLen,
  keys,
  parseSignature,
  queueName,
  redactAddress,
  retentionSeconds,
  satisfies,
  type BatchedResult,
  type JobData,
  type ResultStatus,
  type StoredRef,
  type WorkerInfo,
} from './wire.js';
import { ValueStore, storeThresholdBytes } from './values.js';

export interface ClusterWorkerOptions {
  address: string;
  /** Tasks in flight at once on this worker (default 1). */
  concurrency?: number;
  /**
   * Threads (or processes) that run them (default: the smaller of `concurrency` and the number of
   * cores). Async tasks share them: each runs up to ceil(concurrency / poolSize) tasks at once.
   */
  poolSize?: number;
  /** What this worker offers, e.g. { GPU: 2 }. */
  resources?: Record<string, number>;
  /** Modules to load at start (paths relative to the working directory). */
  imports?: string[];
  name?: string;
  /** Refuse plain functions shipped by source (run only task()s from this worker's modules). */
  acceptSource?: boolean;
  prefix?: string;
  /** Where the pool runs tasks: 'threads' (default) or 'processes'. */
  pool?: 'threads' | 'processes';
  /** BullMQ lock: a dead worker's job runs elsewhere after about lockMs + stalledIntervalMs. */
  lockMs?: number;
  stalledIntervalMs?: number;
  graceMs?: number;
  /** How long to wait for Redis at start before giving up (default 15000 ms). */
  connectTimeoutMs?: number;
  /**
   * Secrets: with one, the worker runs only jobs signed with one of them and signs its results
   * with the first (see "Trust on a cluster" in the README). Never logged.
   */
  secret?: string[];
  /** CA, client certificate and key for a rediss:// address, each PEM text or a file path. */
  tls?: TlsOptions;
  /** Bytes of stored values (inputs and results) this worker keeps in memory; default 256 MiB. */
  cacheBytes?: number;
  /** Called with log lines (never containing passwords or secrets). */
  log?: (line: string) => void;
}

export interface ClusterWorkerHandle {
  readonly name: string;
  /** Stops taking tasks, finishes the running ones, leaves. */
  close(): Promise<void>;
}

interface LocalAttempt extends Attempt {
  client: string;
  /** The client's attempt id. */
  wireId: number;
  startedAt?: number;
  done: (outcome: Outcome) => void;
  resources: Record<string, number>;
}

const stalledReason = 'job stalled more than allowable limit';
/** BullMQ's words for a job whose lock this worker no longer holds; group 1 is the job id. */
const lockLostPattern = /(?:could not renew lock|Missing lock|Lock mismatch) for job ([^\s.]+)/;
/** BullMQ's words for a job that vanished from Redis while it ran; group 1 is the job id. */
const jobGonePattern = /Missing key for job ([^\s.]+)/;
/** Errors that only say Redis cannot be reached; the connection's own lost/back lines cover them. */
const connectionErrorPattern =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|Stream isn't writeable|Socket closed unexpectedly/i;

/** Starts a cluster worker; resolves once it is connected and taking tasks. */
export async function startClusterWorker(
  options: ClusterWorkerOptions,
): Promise<ClusterWorkerHandle> {
  const prefix = effectivePrefix(options.prefix ?? 'weft', options.address);
  const target: RedisTarget = {
    address: options.address,
    tls: resolveTls(options.tls, 'startClusterWorker tls'),
  };
  const k = keys(prefix);
  const concurrency = options.concurrency ?? 1;
  const poolSize = options.poolSize ?? Math.min(concurrency, availableParallelism());
  const offer = options.resources ?? {};
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const log = options.log ?? (() => undefined);
  const acceptSource = options.acceptSource ?? true;
  const lockDuration = options.lockMs ?? optionDefaults.lockMs;
  const stalledInterval = options.stalledIntervalMs ?? optionDefaults.stalledIntervalMs;
  const graceMs = options.graceMs ?? optionDefaults.graceMs;
  const signer = options.secret?.length ? new Signer(options.secret) : undefined;

  for (const module of options.imports ?? []) {
    const path = resolvePath(process.cwd(), module);
    if (!existsSync(path)) {
      throw new TaskDefinitionError(
        `--import ${module}: no such file (${path}). Paths are relative to the worker's working directory.`,
      );
    }
    await importModule(
      pathToFileURL(path).href,
      (cause) =>
        new TaskDefinitionError(
          `--import ${module} is TypeScript, which the worker loads through tsx, and tsx is not installed. Install it (npm i -D tsx) or import the compiled JavaScript.`,
          { cause },
        ),
    );
  }

  const redis = connect(target, `weft-worker-${name}`);
  const subscriber = connect(target, `weft-worker-${name}-sub`);
  try {
    await waitForRedis(redis, target, options.connectTimeoutMs ?? 15_000);
  } catch (error) {
    subscriber.disconnect();
    throw error;
  }
  const watch = new ClientWatch(redis, prefix, !isCluster(target));
  let closed = false;

  // One line when Redis is lost and one when it is back, however often reconnects fail between.
  let downSince: number | undefined;
  let lastRedisError = '';
  redis.on('error', (error: Error) => (lastRedisError = error.message));
  redis.on('close', () => {
    if (closed || downSince !== undefined) return;
    downSince = Date.now();
    log(
      `lost Redis at ${redactAddress(options.address)}${lastRedisError ? ` (${lastRedisError})` : ''}; retrying, quietly until it is back`,
    );
  });
  redis.on('ready', () => {
    if (downSince === undefined) return;
    log(
      `Redis at ${redactAddress(options.address)} is back after ${((Date.now() - downSince) / 1000).toFixed(1)} s`,
    );
    downSince = undefined;
  });
  /** Other errors, at most once a minute each: a repeating one must not flood the log. */
  const logged = new Map<string, number>();
  const logOnce = (line: string): void => {
    const now = Date.now();
    if ((logged.get(line) ?? 0) > now - 60_000) return;
    if (logged.size > 1000) logged.clear();
    logged.set(line, now);
    log(line);
  };

  const values = new ValueStore(redis, prefix, {
    signer,
    cacheBytes: options.cacheBytes,
    share: (options.pool ?? 'threads') === 'threads',
  });

  // ---- resources: admission --------------------------------------------------------------
  const free: Record<string, number> = { ...offer };
  let slots = concurrency;
  const admissionQueue: { need: Record<string, number>; go: () => void }[] = [];
  const fits = (need: Record<string, number>): boolean => slots > 0 && satisfies(free, need);
  const admit = (need: Record<string, number>): Promise<void> =>
    new Promise((go) => {
      if (admissionQueue.length === 0 && fits(need)) {
        take(need);
        go();
      } else admissionQueue.push({ need, go: () => (take(need), go()) });
    });
  const take = (need: Record<string, number>): void => {
    slots--;
    for (const [key, n] of Object.entries(need)) free[key] = (free[key] ?? 0) - n;
  };
  const giveBack = (need: Record<string, number>): void => {
    slots++;
    for (const [key, n] of Object.entries(need)) free[key] = (free[key] ?? 0) + n;
    for (let i = 0; i < admissionQueue.length;) {
      const waiting = admissionQueue[i]!;
      if (fits(waiting.need)) {
        admissionQueue.splice(i, 1);
        waiting.go();
      } else i++;
    }
  };

  const startedAt = Date.now();
  /** Attempts cancelled by their clients, heard on the control channel. */
  const cancelledHere = new Set<string>();
  const modules = new Map<string, boolean>();
  const moduleExists = (url: string): boolean => {
    let known = modules.get(url);
    if (known === undefined) modules.set(url, (known = existsSync(fileURLToPath(url))));
    return known;
  };

  // ---- the pool that runs user code ------------------------------------------------------
  const running = new Map<string, LocalAttempt>();
  let attemptIds = 0;
  const pool = new WorkerPoolRuntime({
    scheduler: options.pool ?? 'threads',
    workers: poolSize,
    concurrency: Math.ceil(concurrency / poolSize),
    encoded: true,
  });
  const host: RuntimeHost = {
    started: (attempt) => {
      const a = attempt as LocalAttempt;
      a.startedAt = Date.now();
      emit({
        type: 'started',
        key: a.key,
        name: a.name,
        time: a.startedAt,
        worker: name,
        attempt: a.number,
      });
      if (attempt.timeoutMs !== undefined)
        void report(a.client, a.wireId, a.key, a.number, 'started', undefined);
    },
    settled: (attempt, outcome) => (attempt as LocalAttempt).done(outcome),
    requeue: (attempt) => pool.run(attempt),
    capacityAvailable: () => undefined,
    workerEvent: (event) =>
      log(`pool worker ${event.worker} ${event.type}${event.reason ? `: ${event.reason}` : ''}`),
    warning: (message) => log(message),
  };
  await pool.start(host);

  // Results are written in batches: every report made in one turn of the event loop goes out in
  // one pipeline (tiny tasks would otherwise cost a Redis round trip each).
  let outbox: { client: string; result: BatchedResult }[] = [];
  /** Task events for dashboards, sent only while one watches the cluster (`P:watch` exists). */
  let events: TaskEvent[] = [];
  let watched = false;
  let flushing: Promise<void> | undefined;
  const flushReports = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    const batch = outbox;
    const batchEvents = events;
    outbox = [];
    events = [];
    flushing = undefined;
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
      // `i`: the attempt ids in plain text, so that a client whose secret differs can fail them.
      const ids = results.map(([id]) => id).join(',');
      const fields: (string | Buffer)[] = ['b', bytes, 'i', ids, 'w', name];
      if (signer) fields.push('h', signer.sign(batchParts(client, name, bytes)));
      pipeline.xadd(k.out(client), '*', ...fields);
      pipeline.expire(k.out(client), retentionSeconds);
    }
    if (batchEvents.length > 0) {
      pipeline.xadd(
        k.events,
        'MAXLEN',
        '~',
        String(eventsMaxLen),
        '*',
        'e',
        JSON.stringify(batchEvents),
      );
    }
    await pipeline.exec();
  };
  const schedule = (): Promise<void> => (flushing ??= flushReports());
  const report = (
    client: string,
    id: number,
    key: string,
    number: number,
    status: ResultStatus,
    payload: unknown,
  ): Promise<void> =>
    sendReport(
      client,
      id,
      key,
      number,
      status,
      payload === undefined ? undefined : encode(payload),
    );
  /**
   * Reports a task's value: inline when small; else stored in Redis (and kept in this worker's
   * cache for tasks that need it here), with only its reference on the client's stream.
   */
  const reportValue = async (
    client: string,
    id: number,
    key: string,
    number: number,
    value: unknown,
  ): Promise<void> => {
    if (watch.isKnownGone(client)) return;
    // The pool encodes results itself (pool/encoded.ts).
    const bytes = value instanceof EncodedResult ? value.bytes : encode(value);
    if (bytes.length < storeThresholdBytes) return sendReport(client, id, key, number, 'ok', bytes);
    const ref: StoredRef = { k: values.key(client, id), n: bytes.length };
    await values.put(ref.k, bytes, retentionSeconds);
    return sendReport(client, id, key, number, 'ref', encode(ref));
  };
  const sendReport = (
    client: string,
    id: number,
    key: string,
    number: number,
    status: ResultStatus,
    bytes: Buffer | undefined,
  ): Promise<void> => {
    // Nobody reads a gone client's stream; writing would only keep it alive for a day.
    if (watch.isKnownGone(client)) return Promise.resolve();
    outbox.push({ client, result: bytes ? [id, status, bytes] : [id, status] });
    return schedule();
  };
  const emit = (event: TaskEvent): void => {
    if (!watched) return;
    events.push(event);
    void schedule();
  };
  const crossable = (v: unknown): boolean => canCross(v, 'process');

  /** Why this worker will not run a task (a message for TaskDefinitionError), if it will not. */
  const refuse = (ref: TaskRef, wire: JobData['t'][number]): string | undefined => {
    if (ref.kind === 'source' && !acceptSource) {
      return `Worker ${name} runs only tasks defined with task() in its own modules (started with --no-source), but task '${wire.ref.name}' (key ${wire.k}) was sent as a plain function's source. Define it with task() at the top level of a module the worker can load.`;
    }
    if (ref.kind === 'module' && !moduleExists(ref.moduleUrl)) {
      const relative =
        wire.ref.kind === 'module' && wire.ref.projectPath
          ? join(projectRoot(process.cwd()), wire.ref.projectPath)
          : 'a project-relative path';
      return `Worker ${name} cannot find the module of task '${ref.name}' (key ${wire.k}): neither ${fileURLToPath(ref.moduleUrl)} nor ${relative} exists on this machine. Start the worker from a checkout of the same project (its working directory inside it).`;
    }
    return undefined;
  };

  /** A task's arguments with every reference to a stored value replaced by the value. */
  const withStoredInputs = async (args: unknown[]): Promise<unknown[]> => {
    const markers: RefMarker[] = [];
    replaceMarkers(args, (marker) => (markers.push(marker), marker));
    // Bytes, decoded by the pool worker that runs the task (pool/encoded.ts).
    const found = await Promise.all(markers.map((marker) => values.bytes(marker)));
    const byKey = new Map(markers.map((marker, i) => [marker['@weft/ref'], found[i]!]));
    return replaceMarkers(args, (marker) =>
      encodedArgument(byKey.get(marker['@weft/ref'])!),
    ) as unknown[];
  };

  // ---- taking jobs -----------------------------------------------------------------------
  /** Jobs whose lock this worker lost (it was stopped or blocked): their results are dropped. */
  const lostLocks = new Set<string>();
  /** Jobs in processJob now: for those, whether a lost lock matters is decided at report time. */
  const activeJobs = new Set<string>();
  const lockLost = (jobId: string, dropped: boolean): void => {
    if (lostLocks.has(jobId) || (!dropped && activeJobs.has(jobId))) return;
    if (lostLocks.size > 10_000) lostLocks.clear();
    lostLocks.add(jobId);
    log(
      dropped
        ? `job ${jobId}: this worker lost its lock on it (the process was stopped or blocked for over ${lockDuration} ms) and the job was run again elsewhere, so this worker's result of it was dropped`
        : `job ${jobId}: this worker lost its lock on it (the process was stopped or blocked, or Redis unreachable, for over ${lockDuration} ms); its result was delivered, and the job may run again`,
    );
  };
  /**
   * False when the job went to another worker while this one could not renew its lock (it was
   * stopped or blocked): that worker's result counts. Asked only once the lock could have lapsed.
   */
  const keepsResult = async (job: Job<JobData>, token: string | undefined, since: number) => {
    const id = String(job.id);
    if (token === undefined || Date.now() - since < lockDuration) return true;
    const jobKey = `${prefix}:${job.queueName}:${id}`;
    const replies = await redis.multi().get(`${jobKey}:lock`).exists(jobKey).exec();
    const owner = replies?.[0]?.[1] as string | null;
    const exists = replies?.[1]?.[1] === 1;
    // Another token: another worker runs it; no job: another worker finished it.
    const elsewhere = (owner !== null && owner !== token) || !exists;
    if (owner !== token) {
      activeJobs.delete(id);
      lockLost(id, elsewhere);
    }
    return !elsewhere;
  };
  /**
   * Aborts are batched per turn of the event loop and sent queued-first: aborting a running task
   * first would free its slot, and the pool would start a queued one before its own abort came.
   */
  let aborts: [LocalAttempt, Error][] = [];
  const abortSoon = (attempt: LocalAttempt, reason: Error): void => {
    if (aborts.length === 0)
      setImmediate(() => {
        const batch = aborts;
        aborts = [];
        batch.sort(
          ([a], [b]) => Number(a.startedAt !== undefined) - Number(b.startedAt !== undefined),
        );
        for (const [a, why] of batch) pool.abort(a, why, graceMs);
      });
    aborts.push([attempt, reason]);
  };
  /** Clients this worker said it stops work for (one line each). */
  const told = new Set<string>();
  const forget = (client: string, why: string, quietIfIdle = false): void => {
    const mine = [...running.values()].filter((a) => a.client === client);
    if (quietIfIdle && mine.length === 0) return;
    for (const attempt of mine)
      abortSoon(
        attempt,
        new TaskCancelledError(
          `Task '${attempt.name}' (key ${attempt.key}) was stopped because its client ${why}.`,
        ),
      );
    if (told.has(client)) return;
    if (told.size > 10_000) told.clear();
    told.add(client);
    log(
      `client ${client} ${why}: ${mine.length ? `stopping its ${mine.length} running task(s), ` : ''}skipping its queued ones`,
    );
    // The heartbeat goes too: were the client alive after all (cut off, not dead), its next
    // heartbeat finds it missing and fails the tasks it sent, rather than wait for them forever.
    void redis.del(k.out(client), k.cancelled(client), k.client(client)).catch(() => undefined);
  };

  const processJob = async (job: Job<JobData>, token?: string): Promise<void> => {
    activeJobs.add(String(job.id));
    try {
      await runJob(job, token);
    } finally {
      activeJobs.delete(String(job.id));
    }
  };
  const runJob = async (job: Job<JobData>, token?: string): Promise<void> => {
    const data = job.data;
    const jobStart = Date.now();
    const payload =
      typeof data.p === 'string'
        ? Buffer.from(data.p, 'base64')
        : typeof data.pk === 'string'
          ? await redis.getBuffer(data.pk)
          : null;
    // Nothing from the job is decoded, loaded or run before this check.
    const refusal = checkJob(signer, job.queueName, job.id, data, payload);
    if (refusal) {
      log(`refused job ${job.id} from queue ${job.queueName}: ${refusal.log}`);
      if (refusal.client !== undefined)
        for (const wire of refusal.attempts)
          await report(
            refusal.client,
            wire.i,
            wire.k,
            wire.n,
            'error',
            toEnvelope(
              new SignatureError(
                `Worker ${name} refused task '${wire.name}' (key ${wire.k}): ${refusal.reason}`,
              ),
              crossable,
            ),
          );
      throw new Error(`weft refused this job: ${refusal.log}`);
    }
    // A job of a client that went away (shut down, crashed, killed) is done without running.
    if (await watch.isGone(data.c)) {
      forget(data.c, 'is gone');
      if (data.pk) await redis.del(data.pk);
      return;
    }
    if (!payload)
      throw new Error(
        `The arguments of job ${job.id} are gone from Redis (key ${data.pk}); the client may have shut down.`,
      );
    const argLists = decode(payload) as unknown[][];
    // Cancels reach live workers by pub/sub; a job older than this worker may have been
    // cancelled before it subscribed, so only then ask Redis.
    const cancelled =
      job.timestamp < startedAt && data.t.length > 0
        ? await redis.smismember(k.cancelled(data.c), ...data.t.map((t) => String(t.i)))
        : data.t.map((t) => (cancelledHere.has(`${data.c} ${t.i}`) ? 1 : 0));
    const need = parseSignature(
      job.queueName === 'tasks' ? '' : job.queueName.slice('tasks-'.length),
    );
    const hasResources = Object.keys(need).length > 0;
    await Promise.all(
      data.t.map(async (wire, index) => {
        if (cancelled[index] === 1) return;
        const ref = localRef(wire.ref);
        const refusal = refuse(ref, wire);
        if (refusal) {
          await report(
            data.c,
            wire.i,
            wire.k,
            wire.n,
            'error',
            toEnvelope(new TaskDefinitionError(refusal), crossable),
          );
          return;
        }
        let args = argLists[index] ?? [];
        if (wire.v) {
          try {
            args = await withStoredInputs(args);
          } catch (error) {
            await report(data.c, wire.i, wire.k, wire.n, 'error', toEnvelope(error, crossable));
            return;
          }
        }
        // Tasks holding resources wait for room; the rest go straight to the pool, which runs
        // `concurrency` at once and pipelines the others (admitting them one by one would make
        // a chunk of tiny tasks pay a full round trip each).
        const gated = hasResources;
        if (gated) await admit(need);
        try {
          if (watch.isKnownGone(data.c)) return;
          let attempt: LocalAttempt | undefined;
          const outcome = await new Promise<Outcome>((done) => {
            attempt = {
              id: ++attemptIds,
              key: wire.k,
              wireId: wire.i,
              name: wire.ref.name,
              number: wire.n,
              definition: placeholderDefinition,
              ref,
              args,
              timeoutMs: wire.timed ? 1 : undefined,
              client: data.c,
              done,
              resources: need,
            };
            running.set(`${data.c} ${wire.i}`, attempt);
            pool.run(attempt);
          });
          running.delete(`${data.c} ${wire.i}`);
          if (!(await keepsResult(job, token, jobStart))) return;
          if (watched) {
            const now = Date.now();
            const ran = attempt?.startedAt ? { durationMs: now - attempt.startedAt } : {};
            emit({
              type: outcome.ok ? 'finished' : 'failed',
              key: wire.k,
              name: wire.ref.name,
              time: now,
              worker: name,
              attempt: wire.n,
              ...ran,
              ...(outcome.ok ? {} : { error: describeError(outcome.error) }),
            });
          }
          if (outcome.ok) await reportValue(data.c, wire.i, wire.k, wire.n, outcome.value);
          else
            await report(
              data.c,
              wire.i,
              wire.k,
              wire.n,
              'error',
              toEnvelope(outcome.error, crossable),
            );
        } finally {
          if (gated) giveBack(need);
        }
      }),
    );
    if (data.pk) await redis.del(data.pk);
  };

  const workers = new Map<string, Worker<JobData>>();
  const releases: (() => Promise<void>)[] = [];
  /**
   * BullMQ workers are made with `autorun: false` and run once the worker has joined: a BullMQ
   * worker that runs while its connection is refused a command (an ACL user without INFO) was
   * seen spinning and starving the event loop instead of failing.
   */
  let joined = false;
  const run = (worker: Worker<JobData>, queue: string): void => {
    worker.run().catch((error: Error) => log(`queue ${queue} stopped: ${error.message}`));
  };
  const listen = (signature: string): void => {
    const queue = queueName(signature);
    if (workers.has(queue)) return;
    const need = parseSignature(signature);
    if (!satisfies(offer, need)) return;
    const { connection, release } = bullConnection(target, `weft-worker-${name}-${queue}`);
    releases.push(release);
    const worker = new Worker<JobData>(queue, processJob, {
      connection,
      prefix,
      name,
      concurrency,
      lockDuration,
      stalledInterval,
      // A job whose worker died is run again on another; the third death fails it (API.md).
      maxStalledCount: 2,
      drainDelay: 1,
      removeOnComplete: { count: 0 },
      removeOnFail: { age: retentionSeconds, count: 1000 },
      autorun: false,
    });
    worker.on('error', (error) => {
      const lock = lockLostPattern.exec(error.message);
      const gone = jobGonePattern.exec(error.message);
      if (lock) lockLost(lock[1]!, false);
      else if (gone)
        logOnce(
          `job ${gone[1]} vanished from Redis while it ran (Redis restarted without persistence, or was flushed); its client fails its tasks with RedisLostError`,
        );
      else if (!connectionErrorPattern.test(error.message))
        logOnce(`queue ${queue}: ${error.message}`);
    });
    worker.on('failed', (job, error) => {
      if (job && lockLostPattern.test(error.message)) lockLost(String(job.id), false);
      if (!job || !error.message.includes(stalledReason)) return;
      // Every worker that took this job died while running it: tell its client.
      const crash = new WorkerCrashedError(
        `Task chunk ${job.id} was running on ${job.stalledCounter ?? 3} workers that died (killed or crashed) while running it, so it was given up. The task may be killing its worker (out of memory, native crash, process.exit); check the workers' logs.`,
        {},
      );
      for (const wire of job.data.t)
        void report(
          job.data.c,
          wire.i,
          wire.k,
          wire.n,
          'crashed',
          toEnvelope(
            new WorkerCrashedError(`Task '${wire.ref.name}' (key ${wire.k}): ${crash.message}`, {}),
            crossable,
          ),
        );
    });
    workers.set(queue, worker);
    if (joined)
      void worker.waitUntilReady().then(
        () => run(worker, queue),
        (error: Error) => log(`queue ${queue} could not start: ${error.message}`),
      );
  };

  // ---- registry --------------------------------------------------------------------------
  const heartbeat = async (): Promise<void> => {
    const info: WorkerInfo = {
      name,
      host: hostname(),
      pid: process.pid,
      concurrency,
      resources: offer,
      acceptsSource: acceptSource,
      seen: Date.now(),
      running: running.size,
    };
    const [, seen] =
      (await redis.multi().hset(k.workers, name, JSON.stringify(info)).exists(k.watch).exec()) ??
      [];
    watched = seen?.[1] === 1;
  };
  try {
    // What BullMQ needs first, asked on this worker's own connection: a refusal fails here, at once.
    await redis.info('server');
    listen('');
    for (const signature of await redis.smembers(k.sigs)) listen(signature);
    await subscriber.subscribe(k.control);
    await heartbeat();
    // BullMQ checks the server (INFO) before it takes jobs: a refusal fails the start, not later.
    await Promise.all([...workers.values()].map((w) => w.waitUntilReady()));
    joined = true;
    for (const [queue, worker] of workers) run(worker, queue);
  } catch (error) {
    await Promise.all([...workers.values()].map((w) => w.close(true).catch(() => undefined)));
    await Promise.all(releases.map((release) => release()));
    await pool.close();
    subscriber.disconnect();
    redis.disconnect();
    throw explainPermission(error, `Worker ${name} could not join`);
  }
  subscriber.on('message', (_channel: string, message: string) => {
    const [verb, a, b] = message.split(' ');
    if (verb === 'sig' && a !== undefined) listen(a);
    else if (verb === 'gone' && a) {
      watch.left(a);
      forget(a, 'left (it shut down or was interrupted)', true);
    } else if (verb === 'cancel' && a && b) {
      if (cancelledHere.size > 100_000) cancelledHere.clear();
      cancelledHere.add(`${a} ${b}`);
      const attempt = running.get(`${a} ${b}`);
      if (attempt)
        abortSoon(
          attempt,
          new TaskCancelledError(`Task ${attempt.key} was cancelled by its client.`),
        );
    }
  });

  const beat = setInterval(() => {
    if (redis.status === 'ready') void heartbeat().catch(() => undefined);
  }, 2000);
  beat.unref();
  // Running tasks of a client whose heartbeat stopped get their abort signal.
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping || redis.status !== 'ready' || running.size === 0) return;
    sweeping = true;
    const clients = new Set([...running.values()].map((a) => a.client));
    void Promise.all(
      [...clients].map(async (client) => {
        if ((await watch.look(client)) === 'gone')
          forget(client, 'is gone (its heartbeat stopped)');
      }),
    )
      .catch(() => undefined)
      .finally(() => (sweeping = false));
  }, 1000);
  sweep.unref();
  log(
    `worker ${name} joined ${redactAddress(options.address)} (${signer ? `signed jobs only, ${signer.size} secret(s)` : 'no secret: runs unsigned jobs'}, concurrency ${concurrency} on ${poolSize} ${options.pool ?? 'threads'}${
      Object.keys(offer).length
        ? `, resources ${Object.entries(offer)
            .map(([a, b]) => `${a}=${b}`)
            .join(',')}`
        : ''
    })`,
  );

  let closing: Promise<void> | undefined;
  return {
    name,
    close: () =>
      (closing ??= (async () => {
        clearInterval(beat);
        clearInterval(sweep);
        // Stop taking jobs and let running ones finish.
        await Promise.all([...workers.values()].map((w) => w.close()));
        await Promise.all(releases.map((release) => release()));
        await pool.close();
        await redis.hdel(k.workers, name).catch(() => undefined);
        await subscriber.quit().catch(() => subscriber.disconnect());
        closed = true;
        await redis.quit().catch(() => redis.disconnect());
        log(`worker ${name} left`);
      })()),
  };
}

const placeholderDefinition = definitionOf(function remote() {
  throw new Error('runs in a pool worker');
});

/** Maps a client's module URL to this machine: the same path if it exists, else project-relative. */
function localRef(ref: TaskRef): TaskRef {
  if (ref.kind !== 'module') return ref;
  const path = fileURLToPath(ref.moduleUrl);
  if (existsSync(path) || !ref.projectPath) return ref;
  const local = join(projectRoot(process.cwd()), ref.projectPath);
  return { ...ref, moduleUrl: pathToFileURL(local).href };
}
