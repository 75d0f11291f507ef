/**
 * BullMQ job locks as a cluster worker sees them. A worker that was stopped or blocked past
 * `lockMs` (or cut off from Redis) loses its lock on a job, and BullMQ may give the job to
 * another worker: then that worker's result counts and this one's is dropped.
 */
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';

export class JobLocks {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #lockMs: number;
  readonly #log: (line: string) => void;
  /** Jobs whose lock this worker lost (said once each); cleared past 10,000. */
  readonly #lost = new Set<string>();
  /** Jobs being processed now: for those, whether a lost lock matters is decided at report time. */
  readonly #active = new Set<string>();

  /** `prefix`: BullMQ's (the cluster prefix); `lockMs`: BullMQ's lock duration. */
  constructor(redis: Redis, prefix: string, lockMs: number, log: (line: string) => void) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#lockMs = lockMs;
    this.#log = log;
  }

  /** Runs `process` with job `id` counted as active. */
  async whileActive(id: string, process: () => Promise<void>): Promise<void> {
    this.#active.add(id);
    try {
      await process();
    } finally {
      this.#active.delete(id);
    }
  }

  /**
   * BullMQ said this worker lost its lock on job `jobId`. `dropped`: its result was dropped since
   * another worker has the job. Logged once per job, and not for an active job unless dropped
   * (`keepsResult` decides those).
   */
  lost(jobId: string, dropped: boolean): void {
    if (this.#lost.has(jobId) || (!dropped && this.#active.has(jobId))) return;
    if (this.#lost.size > 10_000) this.#lost.clear();
    this.#lost.add(jobId);
    this.#log(
      dropped
        ? `job ${jobId}: this worker lost its lock on it (the process was stopped or blocked for over ${this.#lockMs} ms) and the job was run again elsewhere, so this worker's result of it was dropped`
        : `job ${jobId}: this worker lost its lock on it (the process was stopped or blocked, or Redis unreachable, for over ${this.#lockMs} ms); its result was delivered, and the job may run again`,
    );
  }

  /**
   * False when the job went to another worker while this one could not renew its lock (it was
   * stopped or blocked): that worker's result counts. Asked only once the lock could have lapsed
   * (`since`: epoch ms the job started here).
   */
  async keepsResult(job: Job, token: string | undefined, since: number): Promise<boolean> {
    const id = String(job.id);
    if (token === undefined || Date.now() - since < this.#lockMs) return true;
    const jobKey = `${this.#prefix}:${job.queueName}:${id}`;
    const replies = await this.#redis.multi().get(`${jobKey}:lock`).exists(jobKey).exec();
    const owner = replies?.[0]?.[1] as string | null;
    const exists = replies?.[1]?.[1] === 1;
    // Another token: another worker runs it; no job: another worker finished it.
    const elsewhere = (owner !== null && owner !== token) || !exists;
    if (owner !== token) {
      this.#active.delete(id);
      this.lost(id, elsewhere);
    }
    return !elsewhere;
  }
}
