/**
 * Runs attempts in the caller's thread and realm: LocalExecutor (every task at once, inside
 * `submit`) and the `'synchronous'` scheduler (one at a time). Nothing is serialized, so closures
 * work. A task that ignores its aborted signal cannot be stopped here; after the grace period its
 * slot is given back and its eventual result is ignored.
 */
import { runInTaskContext } from '../../core/context.js';
import { isThenable } from '../../core/modules.js';
import type { Attempt, Runtime, RuntimeHost } from '../../core/runtime.js';

interface InlineSlot {
  /** Made on first use: most tasks never look at their signal, and a controller costs ~1 µs. */
  controller: AbortController | undefined;
  done: boolean;
  graceTimer?: NodeJS.Timeout;
}

function controllerOf(slot: InlineSlot): AbortController {
  return (slot.controller ??= new AbortController());
}

export class InlineRuntime implements Runtime {
  readonly boundary = undefined;
  readonly immediate: boolean;
  readonly #concurrency: number;
  #host: RuntimeHost | undefined;
  #running = 0;
  /** Attempts running, with their state. */
  readonly #live = new Map<Attempt, InlineSlot>();

  /** `concurrency` Infinity with `immediate`: LocalExecutor; 1: the synchronous scheduler. */
  constructor(options: { concurrency: number; immediate: boolean }) {
    this.#concurrency = options.concurrency;
    this.immediate = options.immediate;
  }

  start(host: RuntimeHost): Promise<void> {
    this.#host = host;
    return Promise.resolve();
  }

  capacity(): number {
    return this.#concurrency - this.#running;
  }

  run(attempt: Attempt): void {
    const host = this.#host!;
    const slot: InlineSlot = { controller: undefined, done: false };
    this.#running++;
    this.#live.set(attempt, slot);
    host.started(attempt, 'caller');
    const context = {
      get signal(): AbortSignal {
        return controllerOf(slot).signal;
      },
      attempt: attempt.number,
      key: attempt.key,
    };
    let result: unknown;
    try {
      result = runInTaskContext(context, () => attempt.definition.fn(...attempt.args));
    } catch (error) {
      this.#end(attempt, slot, { ok: false, error });
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.#end(attempt, slot, { ok: true, value }),
        (error: unknown) => this.#end(attempt, slot, { ok: false, error }),
      );
    } else {
      this.#end(attempt, slot, { ok: true, value: result });
    }
  }

  abort(attempt: Attempt, reason: Error, graceMs: number): void {
    const slot = this.#live.get(attempt);
    if (!slot || slot.done) return;
    controllerOf(slot).abort(reason);
    if (slot.done) return;
    slot.graceTimer = setTimeout(
      () => this.#end(attempt, slot, { ok: false, error: reason }),
      graceMs,
    );
    slot.graceTimer.unref();
  }

  close(): Promise<void> {
    // Tasks still running ignored their signal past the grace period; let go of them.
    for (const [attempt, slot] of this.#live)
      this.#end(attempt, slot, { ok: false, error: controllerOf(slot).signal.reason });
    return Promise.resolve();
  }

  #end(attempt: Attempt, slot: InlineSlot, outcome: Parameters<RuntimeHost['settled']>[1]): void {
    if (slot.done) return;
    slot.done = true;
    if (slot.graceTimer) clearTimeout(slot.graceTimer);
    this.#running--;
    this.#live.delete(attempt);
    this.#host!.settled(attempt, outcome);
  }
}
