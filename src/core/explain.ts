/**
 * `executor.explain(future)`: why a task is where it is, as data and as a few sentences a person
 * can act on. The scheduler gathers a `Situation` from what it already keeps (the record, the
 * ready queue, resources, the bounded attempt history); this file classifies attempts and writes
 * the text. Nothing here runs unless someone asks for an explanation.
 */
import { describeError } from './errors.js';
import type { FutureStatus } from './types.js';

/** How one attempt ended (or `running`). */
export type AttemptOutcome =
  'running' | 'finished' | 'failed' | 'timeout' | 'cancelled' | 'crashed';

/** One attempt of a task, as `explain` reports it. Times are milliseconds since the epoch. */
export interface AttemptExplanation {
  /** 1 for the first attempt. */
  number: number;
  /** The worker that ran it, where known (`caller` for executors in the caller's thread). */
  worker?: string;
  startedAt?: number;
  /** For an attempt that ended other than `finished` (a success records no time, to cost nothing). */
  endedAt?: number;
  outcome: AttemptOutcome;
  /** What ended it, for every outcome but `running` and `finished`. */
  error?: { name: string; message: string };
  /** For `crashed`: the worker's exit code, when it exited with one. */
  exitCode?: number | null;
  /** For `crashed`: the signal that killed the worker, when one did. */
  signal?: string | null;
  /** For `crashed`: the worker ran out of memory. */
  outOfMemory?: boolean;
  /** For `timeout`: the task's `timeoutMs`. */
  timeoutMs?: number;
}

/** What `executor.explain(future)` resolves to. */
export interface Explanation {
  key: string;
  name: string;
  status: FutureStatus;
  /** A few sentences saying why the task is where it is, and what to do about it. */
  text: string;
  /** Keys of the upstream futures it still waits for. */
  waitingFor: string[];
  /** Its attempts, oldest first (the most recent ones, when it had very many); empty if it never started. */
  attempts: AttemptExplanation[];
}

/** An upstream future the task waits for. */
export interface UpstreamState {
  key: string;
  /** One phrase: `running on threads-1 for 2.1 s`, `waiting for 2 upstream tasks`. */
  state: string;
}

/** A resource the task waits for. */
export interface ResourceWait {
  resource: string;
  need: number;
  /** What the executor offers in all (undefined: a cluster, where each worker offers its own). */
  offered: number | undefined;
  free: number;
  holders: { key: string; amount: number }[];
}

/** What the scheduler knows about one task when asked; see Scheduler.explain. */
export interface Situation {
  key: string;
  name: string;
  status: FutureStatus;
  /** Executor label, e.g. `LocalPoolExecutor (threads)`. */
  label: string;
  priority: number;
  retries: number;
  waitingOn: UpstreamState[];
  queue?: {
    position: number;
    size: number;
    /** Priority -> how many queued tasks of that priority start before it. */
    ahead: Map<number, number>;
    running: string[];
    /** The runtime takes more attempts right now: it is about to be dispatched. */
    hasCapacity: boolean;
  };
  blocked?: ResourceWait[];
  /** The current attempt, from its hand-over to a worker to its end. */
  current?: { number: number; worker?: string; startedAt?: number; detail?: string };
  /** Set while it waits to be retried. */
  retryInMs?: number;
  attempts: AttemptExplanation[];
  /** Attempts not kept in `attempts` (the oldest, when there were very many). */
  droppedAttempts: number;
  /** Its error, for `error` and `cancelled`. */
  error?: unknown;
  cancelledBy?: CancelledBy;
  /** Where it was when it was cancelled. */
  cancelledWhile?: string;
}

export type CancelledBy = 'cancel' | 'shutdown';

/** How many attempts a task keeps in its history; older ones are counted, not kept. */
export const attemptHistoryLimit = 10;

/** An ended attempt as the history keeps it. */
export function endedAttempt(
  number: number,
  worker: string | undefined,
  startedAt: number | undefined,
  error: unknown,
  timeoutMs: number | undefined,
): AttemptExplanation {
  const described = error === undefined ? undefined : describeError(error);
  const attempt: AttemptExplanation = {
    number,
    ...(worker === undefined ? {} : { worker }),
    ...(startedAt === undefined ? {} : { startedAt }),
    // The clock startedAt comes from (performance's, as epoch ms): Date.now() may lag it by a ms.
    endedAt: Math.max(startedAt ?? 0, Math.round(performance.timeOrigin + performance.now())),
    outcome: outcomeOf(error),
    ...(described ? { error: { name: described.name, message: described.message } } : {}),
  };
  if (attempt.outcome === 'crashed') {
    const crash = error as {
      exitCode?: number | null;
      signal?: string | null;
      outOfMemory?: boolean;
    };
    attempt.exitCode = crash.exitCode ?? null;
    attempt.signal = crash.signal ?? null;
    attempt.outOfMemory = crash.outOfMemory === true;
  } else if (attempt.outcome === 'timeout' && timeoutMs !== undefined) {
    attempt.timeoutMs = timeoutMs;
  }
  return attempt;
}

/** By the error's stable code, so errors rebuilt from another realm classify the same. */
function outcomeOf(error: unknown): AttemptOutcome {
  if (error === undefined) return 'finished';
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code === 'TASK_TIMEOUT') return 'timeout';
  if (code === 'TASK_CANCELLED') return 'cancelled';
  if (code === 'WORKER_CRASHED') return 'crashed';
  return 'failed';
}

/** `850 ms`, `3.2 s`, `4 min 10 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** One attempt in a sentence: `attempt 1 on threads-1 crashed after 40 ms: ...`. */
export function describeAttempt(attempt: AttemptExplanation, now = Date.now()): string {
  const where = attempt.worker ? ` on ${attempt.worker}` : '';
  const took =
    attempt.startedAt !== undefined
      ? formatDuration((attempt.endedAt ?? now) - attempt.startedAt)
      : undefined;
  const after = took ? ` after ${took}` : '';
  // Sentences here end in '.', so a message's own final period goes.
  const error = attempt.error
    ? `${attempt.error.name}: ${attempt.error.message.replace(/\.\s*$/, '')}`
    : '';
  switch (attempt.outcome) {
    case 'running':
      return `attempt ${attempt.number}${where} is running${took ? ` (for ${took})` : ''}`;
    case 'finished':
      return `attempt ${attempt.number}${where} finished${took ? ` in ${took}` : ''}`;
    case 'timeout':
      return `attempt ${attempt.number}${where} timed out${after}${attempt.timeoutMs !== undefined ? `, past its limit of timeoutMs ${attempt.timeoutMs}` : ''}`;
    case 'cancelled':
      return `attempt ${attempt.number}${where} was cancelled${after}`;
    case 'crashed': {
      const how: string[] = [];
      if (attempt.outOfMemory) how.push('it ran out of memory');
      if (attempt.signal) how.push(`killed by signal ${attempt.signal}`);
      else if (attempt.exitCode !== undefined && attempt.exitCode !== null)
        how.push(`exit code ${attempt.exitCode}`);
      // The crash's first sentence (who died and how); the rest is advice the text gives anyway.
      const first = attempt.error?.message.split(/(?<=\.) |\.$| while running task /)[0] ?? '';
      return `attempt ${attempt.number}${where} crashed its worker${after}${how.length ? ` (${how.join(', ')})` : ''}: ${first.replace(/\.$/, '')}`;
    }
    default:
      return `attempt ${attempt.number}${where} failed${after} with ${error}`;
  }
}

/** The sentences of an explanation. */
export function explanationText(s: Situation): string {
  const now = Date.now();
  const task = `Task '${s.name}' (key ${s.key})`;
  const out: string[] = [];
  const failed = s.attempts.filter(
    (a) =>
      a.outcome !== 'running' &&
      a.outcome !== 'finished' &&
      // A cancelled task's last attempt is told by the cancel sentence itself.
      !(s.status === 'cancelled' && a.outcome === 'cancelled'),
  );
  const history = (): void => {
    if (failed.length === 0) return;
    const dropped = s.droppedAttempts > 0 ? ` (${s.droppedAttempts} older not kept)` : '';
    out.push(`Earlier: ${failed.map((a) => describeAttempt(a, now)).join('; ')}${dropped}.`);
  };
  switch (s.status) {
    case 'finished': {
      const last = s.attempts[s.attempts.length - 1];
      out.push(
        `${task} finished${last?.worker ? ` on ${last.worker}` : ''}${
          last?.startedAt !== undefined && last.endedAt !== undefined
            ? ` in ${formatDuration(last.endedAt - last.startedAt)}`
            : ''
        }${last && last.number > 1 ? `, on attempt ${last.number}` : ''}.`,
      );
      history();
      break;
    }
    case 'error':
      errorText(s, task, out, failed, now);
      break;
    case 'cancelled': {
      const by =
        s.cancelledBy === 'shutdown'
          ? 'shutdown({ cancelPending: true })'
          : s.cancelledBy === 'cancel'
            ? 'Future.cancel()'
            : 'a cancel';
      out.push(`${task} was cancelled by ${by}${s.cancelledWhile ? ` ${s.cancelledWhile}` : ''}.`);
      history();
      break;
    }
    case 'running': {
      const c = s.current;
      if (c?.worker === 'cluster' && c.startedAt !== undefined) {
        // The client reports 'cluster' when workers were not asked to say who took the task.
        out.push(
          `${task} was sent to the cluster ${formatDuration(now - c.startedAt)} ago (attempt ${c.number} of at most ${s.retries + 1}).`,
        );
      } else if (c?.startedAt !== undefined) {
        out.push(
          `${task} is running${c.worker ? ` on worker ${c.worker}` : ''}, for ${formatDuration(now - c.startedAt)} (attempt ${c.number} of at most ${s.retries + 1}).`,
        );
      } else {
        out.push(
          `${task} was handed to ${c?.worker ? `worker ${c.worker}` : 'a worker'} (attempt ${c?.number ?? 1}) but has not started yet.`,
        );
      }
      if (c?.detail) out.push(c.detail);
      history();
      break;
    }
    default:
      pendingText(s, task, out);
      history();
  }
  return out.join(' ');
}

function pendingText(s: Situation, task: string, out: string[]): void {
  if (s.waitingOn.length > 0) {
    out.push(
      `${task} is pending: it waits for ${plural(s.waitingOn.length, 'upstream task')}: ${s.waitingOn
        .map((u) => `${u.key} (${u.state})`)
        .join(
          ', ',
        )}. It starts once ${s.waitingOn.length === 1 ? 'that finishes' : 'they finish'}; if one fails, it fails with UpstreamTaskError without running.`,
    );
    return;
  }
  if (s.retryInMs !== undefined) {
    out.push(
      `${task} is pending: it waits to be retried (attempt ${s.attempts.length + s.droppedAttempts + 1} of at most ${s.retries + 1}) in ${formatDuration(s.retryInMs)} (retryDelayMs).`,
    );
    return;
  }
  const resourceParts = (): string[] =>
    (s.blocked ?? []).map((b) => {
      const offered =
        b.offered === undefined ? '' : `${s.label} offers ${b.resource}=${b.offered} in all, `;
      const holders =
        b.holders.length > 0
          ? `held by ${b.holders.map((h) => `${h.key} (${b.resource}=${h.amount})`).join(', ')}`
          : 'held by no running task';
      return `resource ${b.resource}: it needs ${b.need}, ${offered}${b.free} is free, ${holders}`;
    });
  // Queued with a worker free, a task short of a resource is held back by the resource alone.
  if (s.blocked && s.blocked.length > 0 && (!s.queue || s.queue.hasCapacity)) {
    const parts = resourceParts();
    out.push(
      `${task} is pending: it is ready but waits for ${parts.join('; and ')}. It starts when enough is released; give the executor more of it (resources option) to run more at once.`,
    );
    return;
  }
  if (s.queue) {
    const q = s.queue;
    const aheadCount = [...q.ahead.values()].reduce((a, b) => a + b, 0);
    const ahead =
      aheadCount === 0
        ? 'it is next'
        : `${plural(aheadCount, 'task')} will start before it (${[...q.ahead.entries()]
            .sort((a, b) => b[0] - a[0])
            .map(([p, n]) => `${n} of priority ${p}`)
            .join(', ')}; its own priority is ${s.priority})`;
    const list =
      q.running.length > 0
        ? `${q.running.slice(0, 5).join(', ')}${q.running.length > 5 ? ` and ${q.running.length - 5} more` : ''}`
        : 'none';
    const running = q.hasCapacity
      ? ` A worker slot is free, so it is about to be handed to a worker (running now: ${list}).`
      : ` Every worker slot is taken by running tasks: ${list}.`;
    out.push(
      `${task} is pending: it is ready and waits in the ready queue, at position ${q.position} of ${q.size}; ${ahead}.${running} Raise its priority to start it sooner, or add workers.`,
    );
    if (s.blocked && s.blocked.length > 0)
      out.push(`Even with a free worker it would wait for ${resourceParts().join('; and ')}.`);
    return;
  }
  out.push(`${task} is pending: it is about to start.`);
}

function errorText(
  s: Situation,
  task: string,
  out: string[],
  failed: AttemptExplanation[],
  now: number,
): void {
  const error = s.error as { code?: unknown; upstream?: unknown; cause?: unknown } | undefined;
  if (error?.code === 'UPSTREAM_TASK' && failed.length === 0) {
    const root = describeError(error.cause);
    const cancelled = (error.cause as { code?: unknown } | undefined)?.code === 'TASK_CANCELLED';
    out.push(
      `${task} never ran: upstream task ${String(error.upstream)} ${cancelled ? 'was cancelled' : 'failed'} (${root.name}: ${root.message}). Explain ${String(error.upstream)} to see why.`,
    );
    return;
  }
  if (failed.length === 0) {
    const d = describeError(s.error);
    out.push(`${task} failed before it ran: ${d.name}: ${d.message}`);
    return;
  }
  const total = failed.length + s.droppedAttempts;
  out.push(
    `${task} failed after ${plural(total, 'attempt')} (retries ${s.retries}): ${failed
      .map((a) => describeAttempt(a, now))
      .join('; ')}${s.droppedAttempts > 0 ? ` (${s.droppedAttempts} older not kept)` : ''}.`,
  );
  const last = failed[failed.length - 1]!;
  // Out of memory: the crash's own sentence already says which limit to raise.
  if (last.outcome === 'crashed' && !last.outOfMemory)
    out.push(
      'The task killed its worker (process.exit, a signal, a native crash); fix it, or give it retries.',
    );
  else if (last.outcome === 'timeout')
    out.push('Raise timeoutMs, or make the task stop sooner (check taskContext().signal).');
}
