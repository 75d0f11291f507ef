/**
 * `progress()`: a terminal progress bar (done, failed, running, rate, ETA) over an executor's
 * events or a set of futures, drawn with cli-progress. Nothing is drawn when the stream is not a
 * terminal.
 */
import cliProgress from 'cli-progress';
import type { WeftEvent } from '../core/events.js';
import type { Executor, Future } from '../core/types.js';
import { ConfigurationError } from '../core/errors.js';
import {
  checkOptionKeys,
  checkOptionsObject,
  describeOption,
  optionDefaults,
  optionKeys,
} from '../core/options.js';

/** Options of `progress()`. */
export interface ProgressOptions {
  /** Where to draw (default `process.stderr`). */
  stream?: NodeJS.WriteStream;
  /** Text before the bar (default `'tasks'`). */
  label?: string;
  /** Draw even when the stream is not a terminal (one line per redraw, every 2 s and at the end). */
  force?: boolean;
  /**
   * Stops following and resolves at once when aborted. Following an executor otherwise lasts
   * until it shuts down; following futures, until they have all settled.
   */
  signal?: AbortSignal;
}

const progressKeys = optionKeys<ProgressOptions>({
  stream: true,
  label: true,
  force: true,
  signal: true,
});

/** Throws `ConfigurationError` for an unknown key or a value of the wrong kind. */
function checkProgressOptions(options: ProgressOptions): void {
  checkOptionsObject(options, 'progress()');
  checkOptionKeys(options, progressKeys, 'progress()');
  const bad = (what: string, value: unknown): never => {
    throw new ConfigurationError(`progress() ${what}, got ${describeOption(value)}.`);
  };
  const { stream, label, force, signal } = options;
  if (stream !== undefined && typeof (stream as { write?: unknown } | null)?.write !== 'function') {
    bad('stream must be a writable stream such as process.stderr', stream);
  }
  if (label !== undefined && typeof label !== 'string') bad('label must be a string', label);
  if (force !== undefined && typeof force !== 'boolean') bad('force must be true or false', force);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    bad('signal must be an AbortSignal', signal);
  }
}

interface Counts {
  /** Tasks seen: submitted to the executor, or futures given. */
  total: number;
  finished: number;
  /** Failed or cancelled. */
  failed: number;
  running: number;
}

/**
 * Draws a progress bar of `target`'s tasks: settled/total, failed (cancelled ones included),
 * running, rate in tasks/s and the time left.
 *
 * - For an executor, the total is what has been submitted so far; the returned promise resolves
 *   when the executor shuts down (its event stream ends) or `signal` aborts. Start it inside
 *   `start(body)` or right after `start()`.
 * - For futures, it resolves once every one of them has settled, or when `signal` aborts.
 *
 * It never rejects because a task failed; it rejects with `ConfigurationError` for an unknown
 * option key or a bad option value. The bar appears with the first task, so a job that runs
 * none draws nothing. It changes no terminal mode (cursor, wrapping), so an interrupted bar
 * leaves nothing to restore.
 * @example
 * const futures = ex.map(resize, files);
 * await progress(futures, { label: 'resize' });
 * @example
 * await new LocalPoolExecutor().start(async (ex) => {
 *   void progress(ex); // ends when start() shuts the executor down
 *   return ex.wait(ex.map(resize, files));
 * });
 */
export async function progress(
  target: Executor | Iterable<Future<unknown>>,
  options: ProgressOptions = {},
): Promise<void> {
  checkProgressOptions(options);
  const stream = options.stream ?? process.stderr;
  const draw = options.force === true || stream.isTTY === true;
  const counts: Counts = { total: 0, finished: 0, failed: 0, running: 0 };
  const bar = draw
    ? new Bar(stream, options.label ?? optionDefaults.progressLabel, counts, !stream.isTTY)
    : undefined;
  const update = bar ? () => bar.update() : () => undefined;
  try {
    if (isExecutor(target)) {
      await followExecutor(target, counts, update, options.signal);
    } else {
      await followFutures([...target], counts, update, options.signal, bar !== undefined);
    }
  } finally {
    bar?.stop();
  }
}

function isExecutor(value: unknown): value is Executor {
  return typeof value === 'object' && value !== null && 'submit' in value && 'events' in value;
}

/** Resolves when `signal` aborts; never when there is none. */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}

async function followFutures(
  futures: Future<unknown>[],
  counts: Counts,
  update: () => void,
  signal: AbortSignal | undefined,
  drawing: boolean,
): Promise<void> {
  counts.total = futures.length;
  update();
  // A future says when it settles but not when it starts: look at the statuses now and then.
  const countRunning = (): void => {
    let running = 0;
    for (const f of futures) if (f.status === 'running') running++;
    counts.running = running;
  };
  const poll = drawing
    ? setInterval(() => {
        countRunning();
        update();
      }, 250)
    : undefined;
  poll?.unref();
  try {
    const settled = Promise.all(
      futures.map((f) =>
        Promise.resolve(f).then(
          () => {
            counts.finished++;
            update();
          },
          () => {
            counts.failed++;
            update();
          },
        ),
      ),
    );
    await Promise.race([settled, aborted(signal)]);
    countRunning();
  } finally {
    clearInterval(poll);
  }
}

async function followExecutor(
  executor: Executor,
  counts: Counts,
  update: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  // Keys of started tasks: `running` must not count a retried task twice.
  const running = new Set<string>();
  const onEvent = (event: WeftEvent): void => {
    if (!('key' in event)) return;
    switch (event.type) {
      case 'submitted':
        counts.total++;
        break;
      case 'started':
        running.add(event.key);
        break;
      case 'retried':
        running.delete(event.key);
        break;
      case 'finished':
        counts.finished++;
        running.delete(event.key);
        break;
      case 'failed':
      case 'cancelled':
        counts.failed++;
        running.delete(event.key);
        break;
    }
    counts.running = running.size;
    update();
  };
  const iterator = executor.events[Symbol.asyncIterator]();
  const stop = aborted(signal).then(() => ({ done: true, value: undefined }) as const);
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), stop]);
      if (next.done) break;
      onEvent(next.value);
    }
  } finally {
    // Unregisters the iterator from the executor, so it stops buffering events for us.
    await iterator.return?.();
  }
}

/** A cli-progress bar that appears with the first task and follows the current pace. */
class Bar {
  readonly #counts: Counts;
  readonly #bar: cliProgress.SingleBar;
  #active = false;
  #firstSeenMs = 0;
  #pushedMs = 0;
  #trailing: NodeJS.Timeout | undefined;
  /** Recent (time, settled) samples: the rate and ETA follow the current pace, not the average. */
  #samples: { ms: number; settled: number }[] = [];
  /** Once stopped, the bar stays down: a late event must not draw it again. */
  #stopped = false;

  constructor(stream: NodeJS.WriteStream, label: string, counts: Counts, lineMode: boolean) {
    this.#counts = counts;
    this.#bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} {bar} {value}/{total} | failed {failed} | running {running} | {rate}/s | ETA {left}`,
        // No terminal modes to restore: a Ctrl-C (or a task blocking this thread, which delays any
        // signal handler) leaves the terminal as it was. cli-progress trims the line to the width.
        hideCursor: false,
        linewrap: true,
        barsize: Math.max(10, Math.min(40, (stream.columns || 80) - 55 - label.length)),
        clearOnComplete: false,
        fps: 10,
        noTTYOutput: lineMode,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(): void {
    const c = this.#counts;
    if (c.total === 0 || this.#stopped) return;
    const now = performance.now();
    if (!this.#active) {
      this.#active = true;
      this.#firstSeenMs = now;
      this.#bar.start(c.total, c.finished + c.failed, this.#payload(now));
      this.#pushedMs = now;
      return;
    }
    // cli-progress does O(buffer) work per update: at 100k tasks/s, pass on every 50 ms at most.
    if (now - this.#pushedMs >= 50) this.#push(now);
    else
      this.#trailing ??= setTimeout(() => {
        this.#trailing = undefined;
        this.#push(performance.now());
      }, 50).unref();
  }

  stop(): void {
    this.#stopped = true;
    if (!this.#active) return;
    clearTimeout(this.#trailing);
    this.#trailing = undefined;
    this.#push(performance.now());
    this.#active = false;
    this.#bar.stop();
  }

  #push(now: number): void {
    const c = this.#counts;
    this.#pushedMs = now;
    this.#bar.setTotal(c.total);
    this.#bar.update(c.finished + c.failed, this.#payload(now));
  }

  #payload(now: number): Record<string, number | string> {
    const c = this.#counts;
    const settled = c.finished + c.failed;
    const last = this.#samples.at(-1);
    if (!last || now - last.ms >= 100) {
      this.#samples.push({ ms: now, settled });
      if (this.#samples.length > 50) this.#samples.shift();
    }
    return { failed: c.failed, running: c.running, ...this.#pace(now, settled) };
  }

  #pace(now: number, settled: number): { rate: string; left: string } {
    const first = this.#samples[0];
    const windowMs = first ? now - first.ms : 0;
    const overallMs = now - this.#firstSeenMs;
    // Early on the window holds too little to go by; use everything seen so far instead.
    const perSecond =
      first && windowMs >= 1000
        ? ((settled - first.settled) * 1000) / windowMs
        : overallMs > 0
          ? (settled * 1000) / overallMs
          : 0;
    const remaining = this.#counts.total - settled;
    return {
      rate: perSecond >= 10 ? Math.round(perSecond).toString() : perSecond.toFixed(1),
      left: remaining === 0 ? '0s' : perSecond > 0 ? formatSeconds(remaining / perSecond) : '?',
    };
  }
}

/** `7s`, `2m05s`, `1h20m`. */
function formatSeconds(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 100 * 3600)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return '>99h';
}
