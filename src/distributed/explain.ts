/**
 * What `explain` adds on a cluster, read from Redis on demand: where a sent attempt's job is
 * (waiting in its queue, or active and on which worker), which live workers could take it, and
 * when its worker last sent a heartbeat. Nothing here runs unless someone asks.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { formatDuration } from '../core/explain.js';
import { resourceSignature, satisfies, type WorkerInfo } from './wire.js';

/** What the client runtime keeps in `Attempt.slot` once an attempt was sent: its queue and job. */
export interface ClusterSlot {
  queue: string;
  job: string;
}

/** A worker is dead after this long without a heartbeat (the registry's rule, see wire.ts). */
const deadAfterMs = 10_000;

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
  const raw = await redis.hgetall(options.workersKey);
  const now = Date.now();
  const registry = Object.values(raw).map((v) => JSON.parse(v) as WorkerInfo);
  const live = registry.filter((w) => now - w.seen < deadAfterMs);
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
        const offers =
          live.map((w) => `${w.name}: ${resourceSignature(w.resources) || 'none'}`).join('; ') ||
          'no worker is connected';
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
