/**
 * What the dashboard shows, aggregated from the event stream as it flows: counts per task name,
 * workers and what they run, a ring of the latest task bars and the latest errors. Nothing grows
 * with the number of tasks: 100,000 tasks keep at most `maxBars` bars, `maxErrors` errors and
 * `maxDepartedWorkers` workers that have gone.
 */
import type { EventError, TaskEvent, WeftEvent, WorkerEvent } from '../core/events.js';

/** How a bar ended: 0 finished, 1 failed (or tried again), 2 cancelled. */
export type Outcome = 0 | 1 | 2;
const barFinished = 0;
const barFailed = 1;
const barCancelled = 2;

/**
 * One ended attempt on the task stream, as a tuple to keep the wire small:
 * `[seq, worker, task name, start, end, outcome, key]`. `seq` numbers bars from 1 in the order
 * they ended; `start` and `end` are milliseconds since the snapshot's `startedAt`; `key` is the
 * future's key, which the page asks `/api/explain` about when the bar is clicked.
 */
export type Bar = [
  seq: number,
  worker: string,
  name: string,
  start: number,
  end: number,
  outcome: Outcome,
  key: string,
];

/** An attempt running now: `[worker, task name, start, key]`, start and key as for `Bar`. */
export type RunningBar = [worker: string, name: string, start: number, key: string];

/** Counts for one task name. `running` is attempts running now; the others are totals. */
export interface NameCounts {
  submitted: number;
  running: number;
  finished: number;
  failed: number;
  cancelled: number;
  /** Attempts that failed and were tried again. */
  retried: number;
}

export interface WorkerView {
  name: string;
  pid?: number;
  state: WorkerEvent['type'];
  /** What it runs now (at most `maxRunningPerWorker`; `busy` counts them all). */
  running: { name: string; key: string; since: number }[];
  busy: number;
  finished: number;
  failed: number;
  resources?: Record<string, number>;
  /** Why it crashed, or its exit code and signal when it left. */
  reason?: string;
}

export interface ErrorView {
  /** Epoch milliseconds. */
  time: number;
  /** Task name and future key. */
  name: string;
  key: string;
  attempt?: number;
  worker?: string;
  /** Message and stack cut to `maxErrorTextLength` characters each. */
  error: EventError;
}

/** What `/api/state` answers and, in parts, what the live stream sends. */
export interface Snapshot {
  label: string;
  /** Epoch milliseconds; bar times count from here. */
  startedAt: number;
  /** The server's clock when the snapshot was taken (epoch milliseconds). */
  now: number;
  /** Changes with every event applied. */
  version: number;
  totals: NameCounts;
  names: Record<string, NameCounts>;
  workers: WorkerView[];
  /** Bars whose seq is greater than the `since` asked for, oldest first (at most `maxBars`). */
  bars: Bar[];
  /** Seq of the newest bar. */
  lastSeq: number;
  /** Attempts running now (at most `maxRunningShown`). */
  running: RunningBar[];
  /** Newest first. */
  errors: ErrorView[];
  /** Changes whenever `errors` does. */
  errorsVersion: number;
  maxBars: number;
}

/** Bars kept for the task stream (the newest). */
export const maxBars = 5_000;
/** Errors kept (the newest). */
export const maxErrors = 50;
/** Workers that left or crashed kept in view (the latest); live workers are always shown. */
export const maxDepartedWorkers = 100;
/** Distinct task names counted one by one; the rest are counted under `otherNames`. */
export const maxNames = 500;
export const otherNames = '(other tasks)';
const maxRunningShown = 1_000;
const maxRunningPerWorker = 5;
const maxErrorTextLength = 16_000;

const zero = (): NameCounts => ({
  submitted: 0,
  running: 0,
  finished: 0,
  failed: 0,
  cancelled: 0,
  retried: 0,
});

const cut = (text: string): string =>
  text.length > maxErrorTextLength
    ? `${text.slice(0, maxErrorTextLength)}… (${text.length - maxErrorTextLength} more characters)`
    : text;

export class DashboardState {
  readonly startedAt = Date.now();
  readonly #label: string;
  readonly #names = new Map<string, NameCounts>();
  readonly #totals = zero();
  /** Insertion order is join order; a departed worker is moved to the end. */
  readonly #workers = new Map<string, WorkerView>();
  #departed = 0;
  /** Attempts running now, by future key. */
  readonly #running = new Map<string, { worker: string; name: string; start: number }>();
  /** Ring of bars: the bar with seq n sits at index n % maxBars. */
  readonly #bars: Bar[] = [];
  #seq = 0;
  /** Ring of errors, oldest first once full: the next one overwrites index #errorCount % maxErrors. */
  readonly #errors: ErrorView[] = [];
  #errorCount = 0;
  #version = 0;

  constructor(label: string) {
    this.#label = label;
  }

  /** Changes with every event applied: nothing to send while it stays the same. */
  get version(): number {
    return this.#version;
  }

  /** Changes whenever the list of errors does. */
  get errorsVersion(): number {
    return this.#errorCount;
  }

  /** Seq of the newest bar. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Number of bars kept (at most `maxBars`). */
  get barCount(): number {
    return Math.min(this.#seq, maxBars);
  }

  /** Number of workers in view. */
  get workerCount(): number {
    return this.#workers.size;
  }

  /** Number of attempts running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  apply(event: WeftEvent): void {
    // Warnings are for the terminal and for listeners; the page shows tasks and workers.
    if (event.type === 'warning') return;
    this.#version++;
    if ('key' in event) this.#task(event);
    else this.#workerEvent(event);
  }

  /** Everything the page needs; bars only after `since`, errors only when `withErrors`. */
  snapshot(since = 0, withErrors = true): Snapshot {
    const running: RunningBar[] = [];
    for (const [key, r] of this.#running) {
      if (running.length >= maxRunningShown) break;
      running.push([r.worker, r.name, r.start - this.startedAt, key]);
    }
    return {
      label: this.#label,
      startedAt: this.startedAt,
      now: Date.now(),
      version: this.#version,
      totals: { ...this.#totals },
      names: Object.fromEntries([...this.#names].map(([k, v]) => [k, { ...v }])),
      workers: [...this.#workers.values()].map((w) => ({ ...w, running: [...w.running] })),
      bars: this.barsSince(since),
      lastSeq: this.#seq,
      running,
      errors: withErrors ? this.errors() : [],
      errorsVersion: this.#errorCount,
      maxBars,
    };
  }

  /** Bars with seq greater than `since`, oldest first. */
  barsSince(since: number): Bar[] {
    const from = Math.max(since + 1, this.#seq - maxBars + 1, 1);
    const bars: Bar[] = [];
    for (let seq = from; seq <= this.#seq; seq++) bars.push(this.#bars[seq % maxBars]!);
    return bars;
  }

  /** The kept errors, newest first. */
  errors(): ErrorView[] {
    const kept = Math.min(this.#errorCount, maxErrors);
    const errors: ErrorView[] = [];
    for (let i = 1; i <= kept; i++) errors.push(this.#errors[(this.#errorCount - i) % maxErrors]!);
    return errors;
  }

  #task(event: TaskEvent): void {
    const counts = this.#counts(event.name);
    switch (event.type) {
      case 'submitted':
        counts.submitted++;
        this.#totals.submitted++;
        return;
      case 'started': {
        // A start without an end we saw (a re-dispatch after a lost worker) ends the old attempt.
        if (this.#running.has(event.key)) this.#end(event, barFailed, counts);
        const worker = event.worker ?? 'unknown';
        this.#running.set(event.key, { worker, name: event.name, start: event.time });
        counts.running++;
        this.#totals.running++;
        const view = this.#worker(worker);
        view.busy++;
        if (view.running.length < maxRunningPerWorker) {
          view.running.push({ name: event.name, key: event.key, since: event.time });
        }
        return;
      }
      case 'retried':
        counts.retried++;
        this.#totals.retried++;
        this.#end(event, barFailed, counts);
        return;
      case 'finished':
      case 'failed':
      case 'cancelled': {
        const outcome =
          event.type === 'finished'
            ? barFinished
            : event.type === 'failed'
              ? barFailed
              : barCancelled;
        this.#end(event, outcome, counts);
        counts[event.type]++;
        this.#totals[event.type]++;
        if (event.type === 'failed' && event.error) this.#addError(event, event.error);
        return;
      }
    }
  }

  /** Ends the attempt of `event.key`, if one runs, with a bar. */
  #end(event: TaskEvent, outcome: Outcome, counts: NameCounts): void {
    const run = this.#running.get(event.key);
    if (run) {
      this.#running.delete(event.key);
      counts.running--;
      this.#totals.running--;
      const view = this.#workers.get(run.worker);
      if (view) {
        view.busy = Math.max(0, view.busy - 1);
        view.running = view.running.filter((r) => r.key !== event.key);
      }
      this.#addBar(run.worker, run.name, run.start, event.time, outcome, event.key);
    } else if (event.worker && event.durationMs !== undefined && event.type !== 'retried') {
      // An attempt whose start we did not see (it began before the dashboard did, or elsewhere).
      this.#addBar(
        event.worker,
        event.name,
        event.time - event.durationMs,
        event.time,
        outcome,
        event.key,
      );
    } else {
      return;
    }
    const worker = this.#worker(run?.worker ?? event.worker!);
    if (outcome === barFinished) worker.finished++;
    else if (outcome === barFailed) worker.failed++;
  }

  #addBar(
    worker: string,
    name: string,
    start: number,
    end: number,
    outcome: Outcome,
    key: string,
  ): void {
    const seq = ++this.#seq;
    this.#bars[seq % maxBars] = [
      seq,
      worker,
      name,
      start - this.startedAt,
      end - this.startedAt,
      outcome,
      key,
    ];
  }

  #addError(event: TaskEvent, error: EventError): void {
    this.#errors[this.#errorCount % maxErrors] = {
      time: event.time,
      name: event.name,
      key: event.key,
      ...(event.attempt !== undefined ? { attempt: event.attempt } : {}),
      ...(event.worker !== undefined ? { worker: event.worker } : {}),
      error: {
        name: error.name,
        message: cut(error.message),
        ...(error.stack !== undefined ? { stack: cut(error.stack) } : {}),
      },
    };
    this.#errorCount++;
  }

  #workerEvent(event: WorkerEvent): void {
    const view = this.#worker(event.worker);
    const wasLive = view.state === 'joined';
    view.state = event.type;
    if (event.pid !== undefined) view.pid = event.pid;
    if (event.resources) view.resources = { ...event.resources };
    if (event.type === 'joined') {
      delete view.reason;
      if (!wasLive) this.#departed--;
      return;
    }
    const exit = [
      event.exitCode !== undefined && event.exitCode !== null ? `exit code ${event.exitCode}` : '',
      event.signal ? `signal ${event.signal}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const why = event.reason?.replace(/\.$/, '');
    const reason = why && exit ? `${why} (${exit})` : why || exit;
    if (reason) view.reason = reason;
    // Its attempts end with their own task events (retried or failed); the worker runs none now.
    view.running = [];
    view.busy = 0;
    if (wasLive) {
      this.#departed++;
      // Keep departed workers in the order they went, after the live ones, and only the latest.
      this.#workers.delete(view.name);
      this.#workers.set(view.name, view);
      if (this.#departed > maxDepartedWorkers) {
        for (const [name, other] of this.#workers) {
          if (other.state !== 'joined') {
            this.#workers.delete(name);
            this.#departed--;
            break;
          }
        }
      }
    }
  }

  #counts(name: string): NameCounts {
    let counts = this.#names.get(name);
    if (!counts) {
      // Past maxNames, new names share one row (which may be the one past the limit).
      if (this.#names.size >= maxNames && name !== otherNames) return this.#counts(otherNames);
      this.#names.set(name, (counts = zero()));
    }
    return counts;
  }

  #worker(name: string): WorkerView {
    let view = this.#workers.get(name);
    if (!view) {
      view = { name, state: 'joined', running: [], busy: 0, finished: 0, failed: 0 };
      this.#workers.set(name, view);
    }
    return view;
  }
}
