/**
 * Options, in one place: the default of every option weft takes, and the check that refuses an
 * option key it does not know (a misspelled key would otherwise be silently ignored), naming the
 * closest valid key.
 */
import { ConfigurationError, TaskDefinitionError } from './errors.js';

/**
 * The default of every option. Code that needs a default reads it here; doc comments that state
 * a default state this value.
 */
export const optionDefaults = {
  /** Milliseconds a cancelled or timed-out task may ignore its AbortSignal before its worker is stopped. */
  graceMs: 1000,
  /** `LocalPoolExecutor` scheduler. */
  scheduler: 'threads',
  /** `LocalExecutor`: async tasks in flight at once (no limit). */
  localConcurrency: Number.POSITIVE_INFINITY,
  /** `LocalPoolExecutor`: tasks in flight per worker. */
  poolConcurrency: 1,
  /** `DistributedExecutor` local cluster and `weft worker`: tasks in flight per worker. */
  clusterConcurrency: 1,
  /** Redis key prefix of a cluster. */
  prefix: 'weft',
  /** `DistributedExecutor`: local-cluster workers as threads (false) or child processes (true). */
  localProcesses: false,
  /** Address the dashboard binds to. */
  dashboardHost: '127.0.0.1',
  /** Dashboard port; 0 picks a free one. */
  dashboardPort: 0,
  /** Text before the progress bar. */
  progressLabel: 'tasks',
  /** Task options. */
  retries: 0,
  retryDelayMs: 0,
  priority: 0,
  /** Cluster worker: BullMQ job lock, and how often stalled jobs are looked for (ms). */
  lockMs: 3000,
  stalledIntervalMs: 1500,
} as const;

/**
 * The keys an options object may have, written as a record so that the compiler checks it lists
 * every key of `T` and nothing else: `optionKeys<LocalExecutorOptions>({ concurrency: true, ... })`.
 */
export function optionKeys<T extends object>(keys: Record<keyof T, true>): readonly string[] {
  return Object.keys(keys);
}

/**
 * Throws when `options` has a key not in `valid`: `ConfigurationError` by default,
 * `TaskDefinitionError` for task options. `owner` names what the options are for, e.g.
 * `LocalPoolExecutor` or `task 'resize'`.
 */
export function checkOptionKeys(
  options: object,
  valid: readonly string[],
  owner: string,
  kind: 'configuration' | 'task' = 'configuration',
): void {
  for (const key of Object.keys(options)) {
    if (valid.includes(key)) continue;
    const closest = closestName(key, valid);
    const hint = closest === undefined ? '' : ` Did you mean \`${closest}\`?`;
    const message = `${owner} has no option \`${key}\`.${hint} Its options are: ${valid.join(', ')}.`;
    throw kind === 'task' ? new TaskDefinitionError(message) : new ConfigurationError(message);
  }
}

/**
 * The name in `candidates` closest to `name` (case-insensitive edit distance; a name that the
 * candidate extends counts half its missing letters: `timeout` → `timeoutMs`), or undefined when
 * none is close enough to be a plausible misspelling (more edits than half its length).
 */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let bestRaw = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    const raw = editDistance(lower, other);
    const prefix = lower.length >= 3 && (other.startsWith(lower) || lower.startsWith(other));
    const distance = prefix ? Math.min(raw, Math.ceil(raw / 2)) : raw;
    // Ties go to the smaller raw distance.
    if (distance < bestDistance || (distance === bestDistance && raw < bestRaw)) {
      best = candidate;
      bestDistance = distance;
      bestRaw = raw;
    }
  }
  const allowed = Math.max(2, Math.ceil(name.length / 2));
  return bestDistance <= allowed ? best : undefined;
}

/** Levenshtein distance with adjacent transpositions counted as one edit (`adress`, `sceduler`). */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: the one before last, the last, the current.
  let before = new Array<number>(b.length + 1).fill(0);
  let last = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1);
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(last[j]! + 1, row[j - 1]! + 1, last[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2]! + 1);
      }
      row[j] = d;
    }
    before = last;
    last = row;
  }
  return last[b.length]!;
}

/**
 * Validates a `concurrency` option: a positive integer, or `Infinity` when `allowInfinity`.
 * `source` names the option in the message (`LocalPoolExecutor concurrency`).
 */
export function parseConcurrency(value: unknown, source: string, allowInfinity: boolean): number {
  const valid =
    typeof value === 'number' &&
    value >= 1 &&
    (Number.isInteger(value) || (allowInfinity && value === Number.POSITIVE_INFINITY));
  if (!valid) {
    const range = allowInfinity ? 'a positive integer or Infinity' : 'a positive integer';
    throw new ConfigurationError(
      `${source} must be ${range} (tasks in flight at once), got ${describeOption(value)}.`,
    );
  }
  return value;
}

/**
 * `parseConcurrency` for text from the environment or the command line (`WEFT_CONCURRENCY`,
 * `--concurrency`): digits, or `Infinity` when `allowInfinity`.
 */
export function parseConcurrencyText(text: string, source: string, allowInfinity: boolean): number {
  const trimmed = text.trim();
  const n = /^\d+$/.test(trimmed)
    ? Number(trimmed)
    : /^infinity$/i.test(trimmed)
      ? Number.POSITIVE_INFINITY
      : Number.NaN;
  try {
    return parseConcurrency(n, source, allowInfinity);
  } catch {
    // Report the text as it was given, not the number it became.
    return parseConcurrency(text, source, allowInfinity);
  }
}

/**
 * Validates a boolean option. `source` names it in the message.
 */
export function parseBoolean(value: unknown, source: string): boolean {
  if (typeof value !== 'boolean') {
    throw new ConfigurationError(`${source} must be true or false, got ${describeOption(value)}.`);
  }
  return value;
}

/**
 * Parses a boolean environment variable: `1`, `true`, `yes`, `on` are true; `0`, `false`, `no`,
 * `off` and empty (or unset) are false, in any case; anything else is a `ConfigurationError`.
 */
export function parseFlag(value: string | undefined, source: string): boolean {
  const text = (value ?? '').trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['', '0', 'false', 'no', 'off'].includes(text)) return false;
  throw new ConfigurationError(
    `${source} is ${JSON.stringify(value)}, which is neither on (1, true, yes, on) nor off (0, false, no, off, empty).`,
  );
}

/** A value as a message shows it: strings quoted, everything else with its type. */
export function describeOption(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${String(value)} (${typeof value})`;
}

/**
 * A value as a task-definition message shows it, with its type in words: `the string "x"`,
 * `number -1`, `an object (Map)`, `function f`.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object')
    return Array.isArray(value)
      ? 'an array'
      : `an object (${value.constructor?.name ?? 'null prototype'})`;
  return `${typeof value} ${String(value)}`;
}

/** Throws `ConfigurationError` unless `options` is undefined or a plain object. */
export function checkOptionsObject(options: unknown, owner: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigurationError(
      `${owner} options must be an object, got ${describeOption(options)}.`,
    );
  }
}
