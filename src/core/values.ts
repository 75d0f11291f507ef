/**
 * Walking argument values: finding the futures inside them (dependencies), replacing futures by
 * their values, and checking at `submit` that every value can cross a thread or process boundary.
 */
import { SerializationError } from './errors.js';

/** Brand of weft futures, shared by every copy of weft's modules. */
export const futureSymbol = Symbol.for('weft.future');

/** The minimal view of a future this module needs. */
export interface FutureLike {
  readonly [futureSymbol]: true;
  readonly key: string;
}

export function isFuture(value: unknown): value is FutureLike {
  return typeof value === 'object' && value !== null && futureSymbol in value;
}

export function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Adds every future found in `value` (inside arrays and plain objects, at any depth) to `found`.
 * Returns true when at least one was found.
 */
export function collectFutures(value: unknown, found: Set<FutureLike>, depth = 0): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (isFuture(value)) {
    found.add(value);
    return true;
  }
  if (depth > 64) return false;
  let any = false;
  if (Array.isArray(value)) {
    for (const item of value) if (collectFutures(item, found, depth + 1)) any = true;
  } else if (isPlainObject(value)) {
    for (const key in value) if (collectFutures(value[key], found, depth + 1)) any = true;
  }
  return any;
}

/** A copy of `value` with every future replaced by `valueOf(future)`; containers without futures are kept by identity. */
export function substituteFutures(value: unknown, valueOf: (f: FutureLike) => unknown): unknown {
  return substituteWhere(value, isFuture, valueOf);
}

/**
 * Replaces every value `matches` picks out of arrays and plain objects (at any depth) by
 * `valueOf(it)`, copying only the containers on the way to a replaced value: futures in a task's
 * arguments, stored-value references on a worker (see remote.ts).
 */
export function substituteWhere<T>(
  value: unknown,
  matches: (v: object) => v is T & object,
  valueOf: (found: T) => unknown,
  depth = 0,
): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (matches(value)) return valueOf(value);
  if (depth > 64) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const next = substituteWhere(item, matches, valueOf, depth + 1);
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  if (isPlainObject(value)) {
    let copy: Record<string, unknown> | undefined;
    for (const key in value) {
      const item = value[key];
      const next = substituteWhere(item, matches, valueOf, depth + 1);
      if (next !== item) (copy ??= { ...value })[key] = next;
    }
    return copy ?? value;
  }
  return value;
}

/** Where values must be able to go. */
export type Boundary = 'thread' | 'process';

const noop = (): void => {};

/**
 * Throws `SerializationError` naming the path of the first value in `value` that cannot cross
 * `boundary` (structured clone for threads, v8 serialization for processes). Futures are allowed:
 * they are replaced by their values before the task is sent.
 */
export function assertCrossable(value: unknown, path: string, boundary: Boundary): void {
  check(value, path, boundary, new Set(), noop);
}

/** True when `value` can cross `boundary` (used for error properties, which are dropped rather than failing). */
export function canCross(value: unknown, boundary: Boundary = 'process'): boolean {
  try {
    check(value, '', boundary, new Set(), noop);
    return true;
  } catch {
    return false;
  }
}

const boundaryName = { thread: 'a worker thread', process: 'a child process' } as const;

function check(
  value: unknown,
  path: string,
  boundary: Boundary,
  seen: Set<object>,
  _: () => void,
): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return;
    case 'function':
      throw fail(
        path,
        boundary,
        `a function (${value.name || 'anonymous'})`,
        'Functions cannot be sent; define the work as a task() and pass data to it.',
      );
    case 'symbol':
      throw fail(path, boundary, 'a symbol', 'Pass a string instead.');
  }
  const object = value as object | null;
  if (object === null || seen.has(object)) return;
  if (isFuture(object)) return;
  seen.add(object);
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return;
  if (
    object instanceof Date ||
    object instanceof RegExp ||
    object instanceof Boolean ||
    object instanceof Number ||
    object instanceof String
  )
    return;
  if (typeof SharedArrayBuffer !== 'undefined' && object instanceof SharedArrayBuffer) {
    if (boundary === 'process') {
      throw fail(
        path,
        boundary,
        'a SharedArrayBuffer',
        'Shared memory exists only between threads of one process; use the threads scheduler or pass a copy (new Uint8Array(sab).slice()).',
      );
    }
    return;
  }
  if (object instanceof Promise) {
    throw fail(
      path,
      boundary,
      'a Promise',
      'Await it first, or pass a weft Future (it becomes a dependency).',
    );
  }
  if (
    object instanceof WeakMap ||
    object instanceof WeakSet ||
    (typeof WeakRef !== 'undefined' && object instanceof WeakRef)
  ) {
    throw fail(
      path,
      boundary,
      `a ${object.constructor.name}`,
      'Weak collections cannot be copied; pass a Map or Set.',
    );
  }
  if (object instanceof Map) {
    for (const [k, v] of object) {
      check(k, `${path}.keys()[…]`, boundary, seen, _);
      check(v, `${path}.get(${describeKey(k)})`, boundary, seen, _);
    }
    return;
  }
  if (object instanceof Set) {
    for (const item of object) check(item, `${path}.values()[…]`, boundary, seen, _);
    return;
  }
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) check(object[i], `${path}[${i}]`, boundary, seen, _);
    return;
  }
  if (object instanceof Error) {
    check(object.cause, `${path}.cause`, boundary, seen, _);
    return;
  }
  // Plain objects and class instances: structured clone copies own enumerable properties.
  for (const key of Object.keys(object)) {
    check(
      (object as Record<string, unknown>)[key],
      `${path}${describeProperty(key)}`,
      boundary,
      seen,
      _,
    );
  }
  if (!isPlainObject(object) && Object.keys(object).length === 0 && hasHostSlots(object)) {
    throw fail(
      path,
      boundary,
      `an instance of ${object.constructor?.name ?? 'a host class'}`,
      'It is tied to this thread; pass the data it holds instead.',
    );
  }
}

/** Objects of Node host classes (sockets, handles, ports) that structured clone refuses. */
function hasHostSlots(object: object): boolean {
  const name = (object as { constructor?: { name?: string } }).constructor?.name ?? '';
  return /^(MessagePort|Worker|Socket|Server|ChildProcess|FileHandle|KeyObject|CryptoKey)$/.test(
    name,
  );
}

function fail(path: string, boundary: Boundary, what: string, fix: string): SerializationError {
  return new SerializationError(
    `${path || 'The value'} is ${what}, which cannot be sent to ${boundaryName[boundary]}. ${fix}`,
    path,
  );
}

const identifier = /^[A-Za-z_$][\w$]*$/;

function describeProperty(key: string): string {
  return identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function describeKey(key: unknown): string {
  return typeof key === 'string'
    ? JSON.stringify(key)
    : typeof key === 'object'
      ? '{…}'
      : String(key);
}
