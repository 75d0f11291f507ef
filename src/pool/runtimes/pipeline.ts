/**
 * How far ahead a pool sends tasks to its workers, and what an idle worker takes back.
 *
 * Each worker gets its `concurrency` tasks plus as many ahead as adapt to measured task durations
 * (about 1 ms of queued work; none for long tasks), so tiny tasks travel in batches while long
 * ones stay balanced across workers and priorities keep their meaning. When a task turns out long
 * after others were sent ahead behind it, an idle worker takes back half of those.
 */
import type { PoolTask } from './pool-task.js';
import type { PoolWorker } from './pool-worker.js';

export class Pipeline {
  readonly #maxDepth: number;
  readonly #concurrency: number;
  /** Moving average of task durations in ms; undefined until the first result. */
  #avgMs: number | undefined;

  constructor(maxDepth: number, concurrency: number) {
    this.#maxDepth = maxDepth;
    this.#concurrency = concurrency;
  }

  /** A task ran for `ms`. */
  record(ms: number): void {
    this.#avgMs = this.#avgMs === undefined ? ms : this.#avgMs * 0.8 + ms * 0.2;
  }

  /** How many more tasks the live `workers` take now. */
  room(workers: readonly PoolWorker<PoolTask>[]): number {
    const depth = this.#depth();
    let free = 0;
    for (const w of workers)
      if (w.state !== 'dead') free += Math.max(0, this.#depthFor(w, depth) - w.queue.length);
    return free;
  }

  /**
   * What `idle` should take back: the unstarted half of the longest queue behind a running task
   * (the ids, marked as being stolen), or undefined when there is none.
   */
  steal<T extends PoolTask>(
    idle: PoolWorker<T>,
    workers: readonly PoolWorker<T>[],
  ): { from: PoolWorker<T>; ids: number[] } | undefined {
    if (idle.state === 'dead') return undefined;
    let victim: PoolWorker<T> | undefined;
    let spare = 0;
    for (const w of workers) {
      if (w === idle || w.state === 'dead' || !w.queue[0]?.started) continue;
      let n = 0;
      for (let i = 1; i < w.queue.length; i++) {
        const slot = w.queue[i]!;
        if (!slot.started && !slot.stealing && !slot.aborted) n++;
      }
      if (n > spare) {
        spare = n;
        victim = w;
      }
    }
    if (!victim) return undefined;
    const ids: number[] = [];
    for (let i = victim.queue.length - 1; i >= 1 && ids.length < Math.ceil(spare / 2); i--) {
      const slot = victim.queue[i]!;
      if (slot.started || slot.stealing || slot.aborted) continue;
      slot.stealing = true;
      ids.push(slot.task.id);
    }
    return ids.length > 0 ? { from: victim, ids } : undefined;
  }

  #depth(): number {
    const avg = this.#avgMs;
    if (avg === undefined) return 1;
    return Math.max(1, Math.min(this.#maxDepth, Math.ceil(1 / Math.max(avg, 0.001))));
  }

  /** Its `concurrency` slots plus the pipeline; a worker stuck in a long task takes nothing ahead. */
  #depthFor(worker: PoolWorker<PoolTask>, depth: number): number {
    const head = worker.queue[0];
    if (head?.started && performance.now() - head.startedAt > 2) return this.#concurrency;
    return this.#concurrency + depth - 1;
  }
}
