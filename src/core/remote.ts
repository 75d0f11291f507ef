/**
 * Values that stay where they were made. On a cluster a big result stays in Redis: the scheduler
 * holds a `RemoteValue` in its place, hands it to downstream tasks as it is (their workers fetch
 * the value themselves), and loads it only when user code asks for the value (`await`, `result()`,
 * `wait`). Local executors never make one.
 *
 * A `RemoteValue` serializes as a small marker (its own enumerable fields: the structured clone of
 * a class instance is a plain object of them), so a task's arguments can carry it to a worker
 * without any special encoding; the worker swaps each marker for the value it names.
 */

import { substituteWhere } from './values.js';

/** The field that marks a stored value's reference inside a task's arguments. */
export const refField = '@weft/ref';

/** What a reference looks like once it crossed to a worker. */
export interface RefMarker {
  readonly [refField]: string;
  /** Key of the future whose value it is, for messages. */
  readonly task: string;
  /** Size of the stored value. */
  readonly bytes: number;
}

export class RemoteValue implements RefMarker {
  readonly [refField]: string;
  readonly task: string;
  readonly bytes: number;
  readonly #load: () => Promise<unknown>;
  readonly #worker: string | undefined;
  #loaded: Promise<unknown> | undefined;

  /**
   * `load` fetches and decodes the value; it runs at most once. `worker`: the cluster worker that
   * made it (and keeps it in its cache), if a worker did.
   */
  constructor(
    storeKey: string,
    task: string,
    bytes: number,
    load: () => Promise<unknown>,
    worker?: string,
  ) {
    this[refField] = storeKey;
    this.task = task;
    this.bytes = bytes;
    this.#load = load;
    this.#worker = worker;
  }

  /** The worker that made the value, which has it at hand (not part of the marker). */
  get worker(): string | undefined {
    return this.#worker;
  }

  /** Where the value is stored. */
  get storeKey(): string {
    return this[refField];
  }

  /** The value, fetched on first use. */
  load(): Promise<unknown> {
    return (this.#loaded ??= this.#load());
  }
}

export function isRefMarker(value: unknown): value is RefMarker {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[refField] === 'string'
  );
}

/**
 * `value` with every marker in it (in arrays and plain objects, at any depth, where futures are
 * found in arguments) replaced by `valueOf(marker)`.
 */
export function replaceMarkers(value: unknown, valueOf: (marker: RefMarker) => unknown): unknown {
  return substituteWhere(value, isRefMarker, valueOf);
}
