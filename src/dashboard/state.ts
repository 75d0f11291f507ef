/**
 * What the dashboard shows, aggregated from the event stream: counts per task name, workers and
 * what they run, a bounded window of task bars, the latest errors. Memory stays bounded however
 * many tasks flow (100,000 tasks keep at most `maxBars` bars and `maxErrors` errors).
 */
import type { EventError, WeftEvent } from '../core/events.js';

export interface NameCounts {
  submitted: number;
  running: number;
  finished: number;
  failed: number;
  cancelled: number;
}

export interface WorkerView {
  name: string;
  pid?: number;
  state: 'joined' | 'left' | 'crashed';
  /** Task name and key it runs now, if any. */
  running: { name: string; key: string; since: number }[];
  finished: number;
  failed: number;
  resources?: Record<string, number>;
  reason?: string;
}

/** One finished attempt on the task stream: [seq, worker, name, start, end, ok]. */
export type Bar = [number, string, string, number, number, 0 | 1];

export interface ErrorView {
  time: number;
  name: string;
  key: string;
  worker?: string;
  error: EventError;
}

export interface Snapshot {
  label: string;
  startedAt: number;
  now: number;
  totals: NameCounts;
  names: Record<string, NameCounts>;
  workers: WorkerView[];
  /** Bars with seq greater than the `since` asked for. */
  bars: Bar[];
  /** Attempts running now: [worker, name, start]. */
  running: [string, string, number][];
  errors: ErrorView[];
  lastSeq: number;
}

export const maxBars = 5_000;
export const maxErrors = 50;
const maxRunningShown = 1_000;

const zero = (): NameCounts => ({ submitted: 0, running: 0, finished: 0, failed: 0, cancelled: 0 });

export class DashboardState {
  readonly startedAt = Date.now();
  readonly #label: string;
  readonly #names = new Map<string, NameCounts>();
  readonly #totals = zero();
  readonly #workers = new Map<string, WorkerView>();
  /** Running attempts by key. */
  readonly #running = new Map<string, { worker: string; name: string; start: number }>();
  #bars: Bar[] = [];
  #seq = 0;
  #errors: ErrorView[] = [];

  constructor(label: string) {
    this.#label = label;
  }

  apply(event: WeftEvent): void {
    if (!('key' in event)) {
      const view = this.#worker(event.worker);
      view.state = event.type;
      if (event.pid !== undefined) view.pid = event.pid;
      if (event.resources) view.resources = event.resources;
      if (event.reason) view.reason = event.reason;
      if (event.type !== 'joined') view.running = [];
      return;
    }
    const counts = this.#counts(event.name);
    switch (event.type) {
      case 'submitted':
        counts.submitted++;
        this.#totals.submitted++;
        return;
      case 'started': {
        const previous = this.#running.get(event.key);
        if (previous) this.#stop(event.key, previous.worker);
        else {
          counts.running++;
          this.#totals.running++;
        }
        const worker = event.worker ?? 'unknown';
        this.#running.set(event.key, { worker, name: event.name, start: event.time });
        const view = this.#worker(worker);
        if (view.state !== 'joined') view.state = 'joined';
        view.running.push({ name: event.name, key: event.key, since: event.time });
        return;
      }
      case 'retried':
        this.#end(event.key, event.time, false, counts);
        return;
      case 'finished':
      case 'failed':
      case 'cancelled': {
        const wasRunning = this.#end(event.key, event.time, event.type === 'finished', counts);
        if (!wasRunning && event.worker && event.durationMs !== undefined) {
          // A terminal event without a start we saw (a cluster task that started elsewhere).
          this.#addBar(
            event.worker,
            event.name,
            event.time - event.durationMs,
            event.time,
            event.type === 'finished',
          );
          const view = this.#worker(event.worker);
          if (event.type === 'finished') view.finished++;
          else view.failed++;
        }
        counts[event.type]++;
        this.#totals[event.type]++;
        if (event.error && event.type === 'failed') {
          this.#errors.push({
            time: event.time,
            name: event.name,
            key: event.key,
            ...(event.worker ? { worker: event.worker } : {}),
            error: event.error,
          });
          if (this.#errors.length > maxErrors) this.#errors = this.#errors.slice(-maxErrors);
        }
        return;
      }
    }
  }

  /** Everything the page needs; bars only after `since`. */
  snapshot(since = 0): Snapshot {
    const bars = since >= this.#seq ? [] : this.#bars.filter((b) => b[0] > since);
    const running: [string, string, number][] = [];
    for (const r of this.#running.values()) {
      if (running.length >= maxRunningShown) break;
      running.push([r.worker, r.name, r.start]);
    }
    return {
      label: this.#label,
      startedAt: this.startedAt,
      now: Date.now(),
      totals: { ...this.#totals },
      names: Object.fromEntries([...this.#names].map(([k, v]) => [k, { ...v }])),
      workers: [...this.#workers.values()].map((w) => ({ ...w, running: w.running.slice(0, 5) })),
      bars,
      running,
      errors: [...this.#errors].reverse(),
      lastSeq: this.#seq,
    };
  }

  /** Number of bars kept (bounded by maxBars). */
  get barCount(): number {
    return this.#bars.length;
  }

  #end(key: string, time: number, ok: boolean, counts: NameCounts): boolean {
    const run = this.#running.get(key);
    if (!run) return false;
    this.#running.delete(key);
    counts.running--;
    this.#totals.running--;
    this.#addBar(run.worker, run.name, run.start, time, ok);
    this.#stop(key, run.worker);
    const view = this.#worker(run.worker);
    if (ok) view.finished++;
    else view.failed++;
    return true;
  }

  #stop(key: string, worker: string): void {
    const view = this.#workers.get(worker);
    if (view) view.running = view.running.filter((r) => r.key !== key);
  }

  #addBar(worker: string, name: string, start: number, end: number, ok: boolean): void {
    this.#bars.push([++this.#seq, worker, name, start, end, ok ? 1 : 0]);
    if (this.#bars.length > maxBars * 1.2) this.#bars = this.#bars.slice(-maxBars);
  }

  #counts(name: string): NameCounts {
    let counts = this.#names.get(name);
    if (!counts) this.#names.set(name, (counts = zero()));
    return counts;
  }

  #worker(name: string): WorkerView {
    let view = this.#workers.get(name);
    if (!view)
      this.#workers.set(
        name,
        (view = { name, state: 'joined', running: [], finished: 0, failed: 0 }),
      );
    return view;
  }
}
