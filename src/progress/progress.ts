/**
 * `progress()`: a terminal progress bar (done, failed, running, rate, ETA) over an executor's
 * events or a set of futures, drawn with cli-progress. Nothing is drawn when the stream is not a
 * terminal.
 */
import cliProgress from 'cli-progress';
import type { WeftEvent } from '../core/events.js';
import type { Executor, Future } from '../core/types.js';

/** Options of `progress()`. */
export interface ProgressOptions {
  /** Where to draw (default `process.stderr`). */
  stream?: NodeJS.WriteStream;
  /** Text before the bar (default `tasks`). */
  label?: string;
  /** Draw even when the stream is not a terminal. */
  force?: boolean;
  /** Stops following an executor (its events otherwise end at shutdown). */
  signal?: AbortSignal;
}

/**
 * Draws a progress bar until the futures have all settled, or, for an executor, until it shuts
 * down (or `signal` aborts). Never rejects because a task failed.
 * @example
 * const futures = ex.map(resize, files);
 * await progress(futures);
 */
export async function progress(
  target: Executor | Iterable<Future<unknown>>,
  options: ProgressOptions = {},
): Promise<void> {
  const stream = options.stream ?? process.stderr;
  const draw = options.force === true || stream.isTTY === true;
  const counts = { total: 0, done: 0, failed: 0, running: 0 };
  const started = performance.now();
  const bar = draw
    ? new cliProgress.SingleBar(
        {
          stream,
          format: `${options.label ?? 'tasks'} {bar} {value}/{total} | failed {failed} | running {running} | {rate}/s | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
          etaBuffer: 50,
          noTTYOutput: options.force === true && stream.isTTY !== true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const payload = () => ({
    failed: counts.failed,
    running: counts.running,
    rate: Math.round(
      (counts.done + counts.failed) / Math.max(0.001, (performance.now() - started) / 1000),
    ),
  });
  bar?.start(0, 0, payload());
  const update = (): void => {
    if (!bar) return;
    bar.setTotal(counts.total);
    bar.update(counts.done + counts.failed, payload());
  };

  try {
    if (isExecutor(target)) {
      await followExecutor(target, counts, update, options.signal);
    } else {
      const futures = [...target];
      counts.total = futures.length;
      update();
      await Promise.all(
        futures.map((f) =>
          f.then(
            () => {
              counts.done++;
              update();
            },
            () => {
              counts.failed++;
              update();
            },
          ),
        ),
      );
    }
  } finally {
    update();
    bar?.stop();
  }
}

function isExecutor(value: unknown): value is Executor {
  return typeof value === 'object' && value !== null && 'submit' in value && 'events' in value;
}

async function followExecutor(
  executor: Executor,
  counts: { total: number; done: number; failed: number; running: number },
  update: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
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
      case 'finished':
        counts.done++;
        running.delete(event.key);
        break;
      case 'failed':
      case 'cancelled':
        counts.failed++;
        running.delete(event.key);
        break;
      default:
        break;
    }
    counts.running = running.size;
    update();
  };
  const iterator = executor.events[Symbol.asyncIterator]();
  const stop = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  let stopped = false;
  void stop.then(() => {
    stopped = true;
    void iterator.return?.();
  });
  while (!stopped) {
    const next = await Promise.race([
      iterator.next(),
      stop.then(() => ({ done: true, value: undefined }) as const),
    ]);
    if (next.done) break;
    onEvent(next.value);
  }
}
