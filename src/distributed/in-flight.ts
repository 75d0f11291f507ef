/**
 * The attempts a client handed to the cluster and has not heard the end of, by attempt id, each
 * with the job that carries it once sent (for `explain`).
 */
import type { Attempt } from '../core/runtime.js';
import type { ClusterSlot } from './explain.js';

interface Entry {
  readonly attempt: Attempt;
  /** Set when its job is built; shared by every attempt of that job. */
  slot: ClusterSlot | undefined;
}

/**
 * One map holds an attempt and its job, so that removing the attempt (settled, aborted, lost)
 * forgets its job in the same step: nothing else needs cleaning up.
 */
export class InFlight {
  readonly #entries = new Map<number, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  add(attempt: Attempt): void {
    this.#entries.set(attempt.id, { attempt, slot: undefined });
  }

  has(id: number): boolean {
    return this.#entries.has(id);
  }

  get(id: number): Attempt | undefined {
    return this.#entries.get(id)?.attempt;
  }

  /** The queue and job that carry the attempt, once sent. */
  slot(id: number): ClusterSlot | undefined {
    return this.#entries.get(id)?.slot;
  }

  /** Records the job that carries `id` (no-op when the attempt is no longer in flight). */
  sent(id: number, slot: ClusterSlot): void {
    const entry = this.#entries.get(id);
    if (entry) entry.slot = slot;
  }

  /** Removes `id`; true when it was in flight. */
  delete(id: number): boolean {
    return this.#entries.delete(id);
  }

  /** Removes `id` and returns its attempt, if it was in flight. */
  take(id: number): Attempt | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    this.#entries.delete(id);
    return entry.attempt;
  }

  /** Every attempt, oldest first; like a Map's, the iteration also visits those added meanwhile. */
  *attempts(): IterableIterator<Attempt> {
    for (const entry of this.#entries.values()) yield entry.attempt;
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Removes every attempt and returns them, oldest first. */
  takeAll(): Attempt[] {
    const attempts = Array.from(this.#entries.values(), (entry) => entry.attempt);
    this.#entries.clear();
    return attempts;
  }
}
