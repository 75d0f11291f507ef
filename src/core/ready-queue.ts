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
  /**
   * Items removed while still in the heap (cancelled tasks). They are dropped when they reach the
   * top: rebuilding the heap per removal made cancelling 200,000 queued tasks quadratic.
   */
  #removed = new Set<T>();

  get size(): number {
    return this.#heap.length - this.#removed.size;
  }

  push(item: T): void {
    if (this.#removed.delete(item)) {
      // Removed and pushed again before it reached the top: it is still in the heap, and its
      // priority and seq never change, so it sits where it belongs.
      return;
    }
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
    this.#dropRemoved();
    return this.#heap[0];
  }

  pop(): T | undefined {
    this.#dropRemoved();
    return this.#popTop();
  }

  /**
   * Where a queued item stands: its 1-based position, the queue's size, and how many items of
   * each priority start before it. O(n); for explanations, not for dispatch.
   */
  rank(item: T): { position: number; size: number; ahead: Map<number, number> } | undefined {
    if (this.#removed.has(item) || !this.#heap.includes(item)) return undefined;
    const ahead = new Map<number, number>();
    let count = 0;
    for (const other of this.#heap) {
      if (other === item || this.#removed.has(other) || !before(other, item)) continue;
      count++;
      ahead.set(other.priority, (ahead.get(other.priority) ?? 0) + 1);
    }
    return { position: count + 1, size: this.size, ahead };
  }

  /**
   * Removes one queued item (a cancelled task) in O(1); it leaves the heap when it reaches the top.
   * The caller must know the item is queued (the scheduler checks the task's state).
   */
  remove(item: T): boolean {
    if (this.#removed.has(item)) return false;
    this.#removed.add(item);
    if (this.#removed.size === this.#heap.length) this.drain();
    return true;
  }

  drain(): T[] {
    const removed = this.#removed;
    const all = removed.size === 0 ? this.#heap : this.#heap.filter((x) => !removed.has(x));
    this.#heap = [];
    this.#removed = new Set();
    return all;
  }

  #dropRemoved(): void {
    const removed = this.#removed;
    while (removed.size > 0 && this.#heap.length > 0 && removed.delete(this.#heap[0]!)) {
      this.#popTop();
    }
  }

  #popTop(): T | undefined {
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
}

function before(a: Queued, b: Queued): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}
