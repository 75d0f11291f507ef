/**
 * A cluster worker (`weft worker`): takes chunks of tasks from BullMQ queues and runs them on a
 * local pool, so user code never runs on the event loop that renews BullMQ's job locks (a
 * blocked loop would let another worker take the same job). Results go to each client's own
 * stream. Resources: the worker takes from the queue of every resource signature it can satisfy,
 * and admits a task only while its own resources have room (BullMQ has no resource matching).
 *
 * The parts: `JobRunner` (worker-jobs.ts) takes each job through checks, admission (a
 * `ResourceLedger` of core/resources.ts) and the pool; `ResultOutbox` (worker-outbox.ts) writes results and
 * events; `JobLocks` (worker-locks.ts) tracks BullMQ locks; `Registry` (registry.ts) holds the
 * heartbeat; `RedisLog` (worker-log.ts) says when Redis goes and comes back. `ClusterWorker` joins,
 * listens to the queues and the control channel, and leaves.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { TaskDefinitionError } from '../core/errors.js';
import { importModule } from '../core/modules.js';
import { optionDefaults } from '../core/options.js';
import { WorkerPool } from '../pool/runtimes/workers.js';
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
import { Registry, workerHeartbeatMs } from './registry.js';
import { resolveTls, type TlsOptions } from './tls.js';
import { Signer } from './signing.js';
import { ResourceLedger, parseResourceSignature, satisfies } from '../core/resources.js';
import { JobRunner, type ClusterTask } from './worker-jobs.js';
import { JobLocks } from './worker-locks.js';
import { ResultOutbox } from './worker-outbox.js';
import { RedisLog } from './worker-log.js';
import {
  keys,
  queueName,
  workerQueueName,
  redactAddress,
  retentionSeconds,
  type JobData,
  type WorkerInfo,
} from './wire.js';
import { ValueStore } from './values.js';

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

const stalledReason = 'job stalled more than allowable limit';
/** BullMQ's words for a job whose lock this worker no longer holds; group 1 is the job id. */
const lockLostPattern = /(?:could not renew lock|Missing lock|Lock mismatch) for job ([^\s.]+)/;
/** BullMQ's words for a job that vanished from Redis while it ran; group 1 is the job id. */
const jobGonePattern = /Missing key for job ([^\s.]+)/;
/** Errors that only say Redis cannot be reached; the connection's own lost/back lines cover them. */
const connectionErrorPattern =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|Stream isn't writeable|Socket closed unexpectedly/i;
/** How often the running tasks' clients are checked (ms): tasks of gone ones are stopped. */
const sweepMs = 1000;

/** Starts a cluster worker; resolves once it is connected and taking tasks. */
export async function startClusterWorker(
  options: ClusterWorkerOptions,
): Promise<ClusterWorkerHandle> {
  const worker = new ClusterWorker(options);
  await worker.start();
  return worker;
}

/** One cluster worker: `start()` joins the cluster, `close()` leaves it. */
export class ClusterWorker implements ClusterWorkerHandle {
  readonly name: string;
  readonly #options: ClusterWorkerOptions;
  readonly #prefix: string;
  readonly #target: RedisTarget;
  readonly #keys: ReturnType<typeof keys>;
  readonly #concurrency: number;
  readonly #poolSize: number;
  readonly #offer: Record<string, number>;
  readonly #acceptSource: boolean;
  readonly #lockMs: number;
  readonly #log: (line: string) => void;
  readonly #signer: Signer | undefined;
  // Made by start(), before anything else uses them.
  #redis!: Redis;
  #subscriber!: Redis;
  #registry!: Registry;
  #outbox!: ResultOutbox;
  #locks!: JobLocks;
  #pool!: WorkerPool<ClusterTask>;
  #jobs!: JobRunner;
  /** One BullMQ worker per queue this worker takes from, by queue name. */
  readonly #queues = new Map<string, Worker<JobData>>();
  /** Closes the connections made for the BullMQ workers. */
  readonly #releases: (() => Promise<void>)[] = [];
  /**
   * BullMQ workers are made with `autorun: false` and run once the worker has joined: a BullMQ
   * worker that runs while its connection is refused a command (an ACL user without INFO) was
   * seen spinning and starving the event loop instead of failing.
   */
  #joined = false;
  /** Left: the connection's close is no longer news. */
  #closed = false;
  #closing: Promise<void> | undefined;
  #beat: NodeJS.Timeout | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #sweeping = false;
  readonly #redisLog: RedisLog;

  /** Resolves the options; nothing connects before `start()`. Throws on bad TLS options. */
  constructor(options: ClusterWorkerOptions) {
    this.#options = options;
    this.#prefix = effectivePrefix(options.prefix ?? 'weft', options.address);
    this.#target = {
      address: options.address,
      tls: resolveTls(options.tls, 'startClusterWorker tls'),
    };
    this.#keys = keys(this.#prefix);
    this.#concurrency = options.concurrency ?? 1;
    this.#poolSize = options.poolSize ?? Math.min(this.#concurrency, availableParallelism());
    this.#offer = options.resources ?? {};
    this.name = options.name ?? `${hostname()}-${process.pid}`;
    this.#log = options.log ?? (() => undefined);
    this.#redisLog = new RedisLog(redactAddress(options.address), this.#log);
    this.#acceptSource = options.acceptSource ?? true;
    this.#lockMs = options.lockMs ?? optionDefaults.lockMs;
    this.#signer = options.secret?.length ? new Signer(options.secret) : undefined;
  }

  /** Loads the `imports`, connects, starts the pool and joins; resolves once taking tasks. */
  async start(): Promise<void> {
    const options = this.#options;
    await this.#importModules(options.imports ?? []);
    const name = this.name;
    const redis = (this.#redis = connect(this.#target, `weft-worker-${name}`));
    this.#subscriber = connect(this.#target, `weft-worker-${name}-sub`);
    try {
      await waitForRedis(redis, this.#target, options.connectTimeoutMs ?? 15_000);
    } catch (error) {
      this.#subscriber.disconnect();
      throw error;
    }
    this.#redisLog.watch(redis, () => this.#closed);
    const clients = new ClientWatch(redis, this.#prefix, !isCluster(this.#target));
    const values = new ValueStore(redis, this.#prefix, {
      signer: this.#signer,
      cacheBytes: options.cacheBytes,
      share: (options.pool ?? 'threads') === 'threads',
    });
    this.#registry = new Registry(redis, this.#keys.workers);
    this.#outbox = new ResultOutbox({
      redis,
      prefix: this.#prefix,
      worker: name,
      signer: this.#signer,
      clients,
      values,
      log: this.#log,
    });
    this.#locks = new JobLocks(redis, this.#prefix, this.#lockMs, this.#log);
    this.#pool = new WorkerPool<ClusterTask>({
      scheduler: options.pool ?? 'threads',
      workers: this.#poolSize,
      concurrency: Math.ceil(this.#concurrency / this.#poolSize),
      encoded: true,
    });
    this.#jobs = new JobRunner({
      redis,
      prefix: this.#prefix,
      worker: name,
      signer: this.#signer,
      acceptSource: this.#acceptSource,
      startedAt: Date.now(),
      graceMs: options.graceMs ?? optionDefaults.graceMs,
      pool: this.#pool,
      admission: new ResourceLedger(this.#offer, { slots: this.#concurrency }),
      locks: this.#locks,
      clients,
      values,
      outbox: this.#outbox,
      log: this.#log,
    });
    await this.#pool.start(this.#jobs.poolHost());
    await this.#join();
    this.#subscriber.on('message', (_channel: string, message: string) => this.#onControl(message));
    this.#beat = setInterval(() => {
      if (redis.status === 'ready') void this.#heartbeat().catch(() => undefined);
    }, workerHeartbeatMs);
    this.#beat.unref();
    this.#sweep = setInterval(() => this.#sweepClients(), sweepMs);
    this.#sweep.unref();
    this.#log(this.#joinedLine());
  }

  /** Stops taking tasks, lets the running ones finish, and leaves. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= this.#leave());
  }

  async #leave(): Promise<void> {
    clearInterval(this.#beat);
    clearInterval(this.#sweep);
    // Stop taking jobs and let running ones finish.
    await Promise.all([...this.#queues.values()].map((w) => w.close()));
    await Promise.all(this.#releases.map((release) => release()));
    await this.#pool.close();
    await this.#registry.leave(this.name).catch(() => undefined);
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
    this.#closed = true;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
    this.#log(`worker ${this.name} left`);
  }

  async #importModules(modules: string[]): Promise<void> {
    for (const module of modules) {
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
  }

  /** Listens to every queue it can serve, subscribes, beats once, and runs the queues. */
  async #join(): Promise<void> {
    const redis = this.#redis;
    try {
      // What BullMQ needs first, asked on this worker's own connection: a refusal fails here, at once.
      await redis.info('server');
      this.#listen('');
      // Its own queue: tasks whose largest input this worker made (sender.ts, data affinity).
      this.#take(workerQueueName(this.name));
      for (const signature of await redis.smembers(this.#keys.sigs)) this.#listen(signature);
      await this.#subscriber.subscribe(this.#keys.control);
      await this.#heartbeat();
      // BullMQ checks the server (INFO) before it takes jobs: a refusal fails the start, not later.
      await Promise.all([...this.#queues.values()].map((w) => w.waitUntilReady()));
      this.#joined = true;
      for (const [queue, worker] of this.#queues) this.#run(worker, queue);
    } catch (error) {
      await Promise.all(
        [...this.#queues.values()].map((w) => w.close(true).catch(() => undefined)),
      );
      await Promise.all(this.#releases.map((release) => release()));
      await this.#pool.close();
      this.#subscriber.disconnect();
      redis.disconnect();
      throw explainPermission(error, `Worker ${this.name} could not join`);
    }
  }

  /** Takes from the queue of `signature` from now on, if this worker offers what it needs. */
  #listen(signature: string): void {
    if (!satisfies(this.#offer, parseResourceSignature(signature))) return;
    this.#take(queueName(signature));
  }

  /** Takes jobs from `queue` from now on. */
  #take(queue: string): void {
    if (this.#queues.has(queue)) return;
    const { connection, release } = bullConnection(
      this.#target,
      `weft-worker-${this.name}-${queue}`,
    );
    this.#releases.push(release);
    const worker = new Worker<JobData>(queue, (job, token) => this.#jobs.process(job, token), {
      connection,
      prefix: this.#prefix,
      name: this.name,
      concurrency: this.#concurrency,
      lockDuration: this.#lockMs,
      stalledInterval: this.#options.stalledIntervalMs ?? optionDefaults.stalledIntervalMs,
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
      if (lock) this.#locks.lost(lock[1]!, false);
      else if (gone)
        this.#redisLog.once(
          `job ${gone[1]} vanished from Redis while it ran (Redis restarted without persistence, or was flushed); its client fails its tasks with RedisLostError`,
        );
      else if (!connectionErrorPattern.test(error.message))
        this.#redisLog.once(`queue ${queue}: ${error.message}`);
    });
    worker.on('failed', (job, error) => {
      if (job && lockLostPattern.test(error.message)) this.#locks.lost(String(job.id), false);
      if (!job || !error.message.includes(stalledReason)) return;
      this.#jobs.giveUp(job);
    });
    this.#queues.set(queue, worker);
    if (this.#joined)
      void worker.waitUntilReady().then(
        () => this.#run(worker, queue),
        (error: Error) => this.#log(`queue ${queue} could not start: ${error.message}`),
      );
  }

  #run(worker: Worker<JobData>, queue: string): void {
    worker.run().catch((error: Error) => this.#log(`queue ${queue} stopped: ${error.message}`));
  }

  /** A message on the control channel: a new resource signature, a client gone, a cancel. */
  #onControl(message: string): void {
    const [verb, a, b] = message.split(' ');
    if (verb === 'sig' && a !== undefined) this.#listen(a);
    else if (verb === 'gone' && a) this.#jobs.clientLeft(a);
    else if (verb === 'cancel' && a && b) this.#jobs.cancel(a, b);
  }

  async #heartbeat(): Promise<void> {
    const info: WorkerInfo = {
      name: this.name,
      host: hostname(),
      pid: process.pid,
      concurrency: this.#concurrency,
      resources: this.#offer,
      acceptsSource: this.#acceptSource,
      seen: Date.now(),
      running: this.#jobs.running,
    };
    this.#outbox.watched = await this.#registry.beat(info, this.#keys.watch);
  }

  /** Running tasks of a client whose heartbeat stopped get their abort signal. */
  #sweepClients(): void {
    if (this.#sweeping || this.#redis.status !== 'ready' || this.#jobs.running === 0) return;
    this.#sweeping = true;
    void this.#jobs
      .sweep()
      .catch(() => undefined)
      .finally(() => (this.#sweeping = false));
  }

  #joinedLine(): string {
    const signer = this.#signer;
    const offer = Object.entries(this.#offer);
    return `worker ${this.name} joined ${redactAddress(this.#options.address)} (${signer ? `signed jobs only, ${signer.size} secret(s)` : 'no secret: runs unsigned jobs'}, concurrency ${this.#concurrency} on ${this.#poolSize} ${this.#options.pool ?? 'threads'}${
      offer.length ? `, resources ${offer.map(([a, b]) => `${a}=${b}`).join(',')}` : ''
    })`;
  }
}
