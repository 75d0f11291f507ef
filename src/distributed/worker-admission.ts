/**
 * Admission of resource-holding tasks on a cluster worker: BullMQ has no resource matching, so
 * the worker takes from the queue of every resource signature it can satisfy and lets a task run
 * only while its own resources (and its `concurrency`) have room. Tasks that hold no resources
 * skip this and go straight to the pool.
 */
import { satisfies } from './wire.js';

export class Admission {
  /** What is free of each resource the worker offers. */
  readonly #free: Record<string, number>;
  /** Tasks that may still be admitted at once (the worker's `concurrency` minus those holding). */
  #slots: number;
  /** Tasks waiting for room, in arrival order; one that fits may pass one that does not. */
  readonly #waiting: { need: Record<string, number>; go: () => void }[] = [];

  /** `offer`: what the worker offers, e.g. `{ GPU: 2 }`; `concurrency`: tasks at once. */
  constructor(offer: Record<string, number>, concurrency: number) {
    this.#free = { ...offer };
    this.#slots = concurrency;
  }

  /** Resolves once `need` is taken from what is free; give it back with `release`. */
  admit(need: Record<string, number>): Promise<void> {
    return new Promise((go) => {
      if (this.#waiting.length === 0 && this.#fits(need)) {
        this.#take(need);
        go();
      } else this.#waiting.push({ need, go: () => (this.#take(need), go()) });
    });
  }

  /** Gives back what `admit(need)` took and admits the waiting tasks that fit now. */
  release(need: Record<string, number>): void {
    this.#slots++;
    for (const [key, n] of Object.entries(need)) this.#free[key] = (this.#free[key] ?? 0) + n;
    for (let i = 0; i < this.#waiting.length;) {
      const waiting = this.#waiting[i]!;
      if (this.#fits(waiting.need)) {
        this.#waiting.splice(i, 1);
        waiting.go();
      } else i++;
    }
  }

  #fits(need: Record<string, number>): boolean {
    return this.#slots > 0 && satisfies(this.#free, need);
  }

  #take(need: Record<string, number>): void {
    this.#slots--;
    for (const [key, n] of Object.entries(need)) this.#free[key] = (this.#free[key] ?? 0) - n;
  }
}
