/**
 * Tasks ready to run, highest priority first, ties in submission order. A binary heap: p-queue
 * keeps a sorted array, which costs O(n) per insert once thousands of tasks wait.
 */
export interface Queued {
  readonly priority: number;
  readonly seq: number;
}

export class ReadyQueue<T extends Queued> {
  #heap: T[] = [];

  get size(): number {
    return this.#heap.length;
  }

  push(item: T): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  peek(): T | undefined {
    return this.#heap[0];
  }

  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && before(heap[r]!, heap[l]!) ? r : l;
        if (!before(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }

  /** Removes one item (a cancelled task); O(n), cancellation is rare next to dispatch. */
  remove(item: T): boolean {
    const index = this.#heap.indexOf(item);
    if (index < 0) return false;
    const rest = this.#heap;
    this.#heap = [];
    rest.splice(index, 1);
    for (const x of rest) this.push(x);
    return true;
  }

  drain(): T[] {
    const all = this.#heap;
    this.#heap = [];
    return all;
  }
}

function before(a: Queued, b: Queued): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}
