/**
 * A cluster worker's intake: what happens to a BullMQ job (a chunk of one client's attempts)
 * from the moment the worker takes it. Its signature is checked before anything of it is decoded;
 * attempts of a gone client, cancelled ones and ones this worker refuses are reported without
 * running; the rest go to the pool (those holding resources once admitted), and each result goes
 * to the outbox. Also what the worker does when a client cancels an attempt or goes away.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  SignatureError,
  TaskCancelledError,
  TaskDefinitionError,
  WorkerCrashedError,
  describeError,
} from '../core/errors.js';
import type { Outcome, TaskRef } from '../core/runtime.js';
import { replaceMarkers, type RefMarker } from '../core/remote.js';
import { projectRoot } from '../core/task.js';
import type { PoolHost, PoolTask, WorkerPool } from '../pool/runtimes/workers.js';
import { encodedArgument } from '../pool/encoded.js';
import { hasResources, parseResourceSignature, type ResourceLedger } from '../core/resources.js';
import type { ClientWatch } from './client-watch.js';
import type { JobLocks } from './worker-locks.js';
import type { ReportTarget, ResultOutbox } from './worker-outbox.js';
import { checkJob, type Signer } from './signing.js';
import type { ValueStore } from './values.js';
import { decode, keys, type JobData, type WireAttempt } from './wire.js';

/** One attempt of a job, as this worker's pool runs it. */
export interface ClusterTask extends PoolTask {
  /** Where the module of a module task is on this machine (see `localRef`). */
  readonly ref: TaskRef;
  /** Where its reports go (the client's attempt id, not the pool's `id`). */
  readonly to: ReportTarget;
  /** The client waits for a `started` report (a timeout clock or a listener needs it). */
  readonly reportsStart: boolean;
  /** Epoch ms when the pool reported it started. */
  startedAt: number | undefined;
  /** Called once with how it ended. */
  readonly done: (outcome: Outcome) => void;
}

export interface JobRunnerOptions {
  redis: Redis;
  prefix: string;
  /** This worker's name, for messages and events. */
  worker: string;
  signer: Signer | undefined;
  /** False: refuse tasks shipped as a plain function's source. */
  acceptSource: boolean;
  /** Epoch ms the worker started: older jobs may have been cancelled before it subscribed. */
  startedAt: number;
  /** How long an aborted task may take to stop before its pool worker is stopped (ms). */
  graceMs: number;
  pool: WorkerPool<ClusterTask>;
  admission: ResourceLedger;
  locks: JobLocks;
  clients: ClientWatch;
  values: ValueStore;
  outbox: ResultOutbox;
  log: (line: string) => void;
}

export class JobRunner {
  readonly #o: JobRunnerOptions;
  readonly #keys: ReturnType<typeof keys>;
  /** Attempts in the pool, by `<client> <attempt id>`. */
  readonly #running = new Map<string, ClusterTask>();
  /** The pool's ids, unique on this worker (client attempt ids are unique per client only). */
  #taskIds = 0;
  /** Attempts cancelled by their clients, heard on the control channel; cleared past 100,000. */
  readonly #cancelled = new Set<string>();
  /** Whether a module URL exists on this machine, by URL. */
  readonly #modules = new Map<string, boolean>();
  /** Client module URLs and where they are here (`#localRef`). */
  readonly #localUrls = new Map<string, string>();
  /** Aborts of this turn of the event loop (see `#abortSoon`). */
  #aborts: [ClusterTask, Error][] = [];
  /** Clients this worker said it stops work for (one line each); cleared past 10,000. */
  readonly #told = new Set<string>();

  constructor(options: JobRunnerOptions) {
    this.#o = options;
    this.#keys = keys(options.prefix);
  }

  /** Attempts running (or queued in the pool) now. */
  get running(): number {
    return this.#running.size;
  }

  /** The pool's callbacks: starts become events (and reports when asked for), ends settle. */
  poolHost(): PoolHost<ClusterTask> {
    const { pool, outbox, worker, log } = this.#o;
    return {
      started: (task) => {
        task.startedAt = Date.now();
        outbox.emit({
          type: 'started',
          key: task.key,
          name: task.name,
          time: task.startedAt,
          worker,
          attempt: task.number,
        });
        if (task.reportsStart) void outbox.report(task.to, 'started');
      },
      settled: (task, outcome) => task.done(outcome),
      requeue: (task) => pool.run(task, task.reportsStart),
      capacityAvailable: () => undefined,
      workerEvent: (event) =>
        log(`pool worker ${event.worker} ${event.type}${event.reason ? `: ${event.reason}` : ''}`),
    };
  }

  /** BullMQ's processor: runs every attempt of `job` and reports each. */
  process(job: Job<JobData>, token?: string): Promise<void> {
    return this.#o.locks.whileActive(String(job.id), () => this.#runJob(job, token));
  }

  /** The client cancelled attempt `id` (control channel): it is skipped, or stopped if running. */
  cancel(client: string, id: string): void {
    if (this.#cancelled.size > 100_000) this.#cancelled.clear();
    this.#cancelled.add(`${client} ${id}`);
    const task = this.#running.get(`${client} ${id}`);
    if (task)
      this.#abortSoon(
        task,
        new TaskCancelledError(`Task ${task.key} was cancelled by its client.`),
      );
  }

  /** The client said goodbye (control channel): its running attempts are stopped. */
  clientLeft(client: string): void {
    this.#o.clients.left(client);
    this.#forget(client, 'left (it shut down or was interrupted)', true);
  }

  /** Stops the running attempts of clients whose heartbeat stopped. */
  async sweep(): Promise<void> {
    const clients = new Set([...this.#running.values()].map((t) => t.to.client));
    await Promise.all(
      [...clients].map(async (client) => {
        if ((await this.#o.clients.look(client)) === 'gone')
          this.#forget(client, 'is gone (its heartbeat stopped)');
      }),
    );
  }

  /** Every worker that took `job` died while running it: its client is told (BullMQ gave up). */
  giveUp(job: Job<JobData>): void {
    const crash = new WorkerCrashedError(
      `Task chunk ${job.id} was running on ${job.stalledCounter ?? 3} workers that died (killed or crashed) while running it, so it was given up. The task may be killing its worker (out of memory, native crash, process.exit); check the workers' logs.`,
      {},
    );
    for (const wire of job.data.t)
      void this.#o.outbox.reportError(
        target(job.data.c, wire),
        new WorkerCrashedError(`Task '${wire.ref.name}' (key ${wire.k}): ${crash.message}`, {}),
        'crashed',
      );
  }

  async #runJob(job: Job<JobData>, token: string | undefined): Promise<void> {
    const { redis, signer, outbox, clients, worker, log } = this.#o;
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
          await outbox.reportError(
            { client: refusal.client, id: wire.i, key: wire.k, number: wire.n },
            new SignatureError(
              `Worker ${worker} refused task '${wire.name}' (key ${wire.k}): ${refusal.reason}`,
            ),
          );
      throw new Error(`weft refused this job: ${refusal.log}`);
    }
    // A job of a client that went away (shut down, crashed, killed) is done without running.
    if (await clients.isGone(data.c)) {
      this.#forget(data.c, 'is gone');
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
      job.timestamp < this.#o.startedAt && data.t.length > 0
        ? await redis.smismember(this.#keys.cancelled(data.c), ...data.t.map((t) => String(t.i)))
        : data.t.map((t) => (this.#cancelled.has(`${data.c} ${t.i}`) ? 1 : 0));
    const need = parseResourceSignature(
      job.queueName === 'tasks' ? '' : job.queueName.slice('tasks-'.length),
    );
    await Promise.all(
      data.t.map((wire, index) =>
        cancelled[index] === 1
          ? Promise.resolve()
          : this.#runAttempt(job, token, jobStart, wire, argLists[index] ?? [], need),
      ),
    );
    if (data.pk) await redis.del(data.pk);
  }

  /** Runs one attempt of `job` (unless refused) and reports how it ended. */
  async #runAttempt(
    job: Job<JobData>,
    token: string | undefined,
    jobStart: number,
    wire: WireAttempt,
    wireArgs: unknown[],
    need: Record<string, number>,
  ): Promise<void> {
    const { outbox, clients, admission, pool, locks, worker } = this.#o;
    const client = job.data.c;
    const to = target(client, wire);
    const ref = this.#localRef(wire.ref);
    const refusal = this.#refuse(ref, wire);
    if (refusal) {
      await outbox.reportError(to, new TaskDefinitionError(refusal));
      return;
    }
    let args = wireArgs;
    if (wire.v) {
      try {
        args = await this.#withStoredInputs(args);
      } catch (error) {
        await outbox.reportError(to, error);
        return;
      }
    }
    // Tasks holding resources wait for room; the rest go straight to the pool, which runs
    // `concurrency` at once and pipelines the others (admitting them one by one would make
    // a chunk of tiny tasks pay a full round trip each).
    const gated = hasResources(need);
    if (gated) await admission.admit(need);
    try {
      if (clients.isKnownGone(client)) return;
      const running = `${client} ${wire.i}`;
      let task: ClusterTask | undefined;
      const outcome = await new Promise<Outcome>((done) => {
        task = {
          id: ++this.#taskIds,
          key: wire.k,
          name: wire.ref.name,
          number: wire.n,
          ref,
          args,
          encodedArgs: wire.v === 1,
          to,
          reportsStart: wire.timed,
          startedAt: undefined,
          done,
        };
        this.#running.set(running, task);
        pool.run(task, task.reportsStart);
      });
      this.#running.delete(running);
      if (!(await locks.keepsResult(job, token, jobStart))) return;
      if (outbox.watched) {
        const now = Date.now();
        const ran = task?.startedAt ? { durationMs: now - task.startedAt } : {};
        outbox.emit({
          type: outcome.ok ? 'finished' : 'failed',
          key: wire.k,
          name: wire.ref.name,
          time: now,
          worker,
          attempt: wire.n,
          ...ran,
          ...(outcome.ok ? {} : { error: describeError(outcome.error) }),
        });
      }
      if (outcome.ok) await outbox.reportValue(to, outcome.value);
      else await outbox.reportError(to, outcome.error);
    } finally {
      if (gated) admission.release(need);
    }
  }

  /** Why this worker will not run a task (a message for TaskDefinitionError), if it will not. */
  #refuse(ref: TaskRef, wire: WireAttempt): string | undefined {
    const worker = this.#o.worker;
    if (ref.kind === 'source' && !this.#o.acceptSource) {
      return `Worker ${worker} runs only tasks defined with task() in its own modules (started with --no-source), but task '${wire.ref.name}' (key ${wire.k}) was sent as a plain function's source. Define it with task() at the top level of a module the worker can load.`;
    }
    if (ref.kind === 'module' && !this.#moduleExists(ref.moduleUrl)) {
      const relative =
        wire.ref.kind === 'module' && wire.ref.projectPath
          ? join(projectRoot(process.cwd()), wire.ref.projectPath)
          : 'a project-relative path';
      return `Worker ${worker} cannot find the module of task '${ref.name}' (key ${wire.k}): neither ${fileURLToPath(ref.moduleUrl)} nor ${relative} exists on this machine. Start the worker from a checkout of the same project (its working directory inside it).`;
    }
    return undefined;
  }

  /**
   * Maps a client's module URL to this machine: the same path if it exists, else
   * project-relative. Once per module: a file-system check per task cost ~5% of a tiny task.
   */
  #localRef(ref: TaskRef): TaskRef {
    if (ref.kind !== 'module') return ref;
    let url = this.#localUrls.get(ref.moduleUrl);
    if (url === undefined) {
      if (this.#localUrls.size > 1000) this.#localUrls.clear();
      this.#localUrls.set(ref.moduleUrl, (url = localUrl(ref)));
    }
    return url === ref.moduleUrl ? ref : { ...ref, moduleUrl: url };
  }

  #moduleExists(url: string): boolean {
    let known = this.#modules.get(url);
    if (known === undefined) this.#modules.set(url, (known = existsSync(fileURLToPath(url))));
    return known;
  }

  /**
   * A task's arguments with every reference to a stored value replaced by the value's bytes,
   * which the pool worker that runs the task decodes (pool/encoded.ts).
   */
  async #withStoredInputs(args: unknown[]): Promise<unknown[]> {
    const markers: RefMarker[] = [];
    replaceMarkers(args, (marker) => (markers.push(marker), marker));
    const found = await Promise.all(markers.map((marker) => this.#o.values.bytes(marker)));
    const byKey = new Map(markers.map((marker, i) => [marker['@weft/ref'], found[i]!]));
    return replaceMarkers(args, (marker) =>
      encodedArgument(byKey.get(marker['@weft/ref'])!),
    ) as unknown[];
  }

  /**
   * Aborts are batched per turn of the event loop and sent queued-first: aborting a running task
   * first would free its slot, and the pool would start a queued one before its own abort came.
   */
  #abortSoon(task: ClusterTask, reason: Error): void {
    if (this.#aborts.length === 0)
      setImmediate(() => {
        const batch = this.#aborts;
        this.#aborts = [];
        batch.sort(
          ([a], [b]) => Number(a.startedAt !== undefined) - Number(b.startedAt !== undefined),
        );
        for (const [t, why] of batch) this.#o.pool.abort(t, why, this.#o.graceMs);
      });
    this.#aborts.push([task, reason]);
  }

  /** Stops the running attempts of a client that is gone or left, and drops its keys. */
  #forget(client: string, why: string, quietIfIdle = false): void {
    const mine = [...this.#running.values()].filter((t) => t.to.client === client);
    if (quietIfIdle && mine.length === 0) return;
    for (const task of mine)
      this.#abortSoon(
        task,
        new TaskCancelledError(
          `Task '${task.name}' (key ${task.key}) was stopped because its client ${why}.`,
        ),
      );
    if (this.#told.has(client)) return;
    if (this.#told.size > 10_000) this.#told.clear();
    this.#told.add(client);
    this.#o.log(
      `client ${client} ${why}: ${mine.length ? `stopping its ${mine.length} running task(s), ` : ''}skipping its queued ones`,
    );
    // The heartbeat goes too: were the client alive after all (cut off, not dead), its next
    // heartbeat finds it missing and fails the tasks it sent, rather than wait for them forever.
    const k = this.#keys;
    void this.#o.redis
      .del(k.out(client), k.cancelled(client), k.client(client))
      .catch(() => undefined);
  }
}

/** Where a client's attempt reports go. */
function target(client: string, wire: WireAttempt): ReportTarget {
  return { client, id: wire.i, key: wire.k, number: wire.n };
}

/** Where a module task's module is on this machine (see `JobRunner.#localRef`). */
function localUrl(ref: TaskRef & { kind: 'module' }): string {
  if (existsSync(fileURLToPath(ref.moduleUrl)) || !ref.projectPath) return ref.moduleUrl;
  return pathToFileURL(join(projectRoot(process.cwd()), ref.projectPath)).href;
}
