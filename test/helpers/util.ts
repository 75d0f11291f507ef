/**
 * Small helpers shared by the tests: temp files that tasks append to (the way to observe what ran
 * in another thread or process), rejections as values, and polling with a deadline.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh empty file in its own temp directory. */
export function tempFile(name: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'weft-test-')), name);
  writeFileSync(file, '');
  return file;
}

/** A path in a fresh temp directory that does not exist yet (a gate: create it to open). */
export function tempPath(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'weft-test-')), name);
}

/** Opens a gate made by `tempPath`. */
export function open(gate: string): void {
  writeFileSync(gate, 'open');
}

/** The non-empty lines of a file ([] when it does not exist). */
export function lines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

/** Resolves with the rejection reason; fails when the promise fulfils. */
export function rejection(promise: PromiseLike<unknown>): Promise<unknown> {
  return Promise.resolve(promise).then(
    (value: unknown) => {
      throw new Error(`expected a rejection, but it fulfilled with ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

/** What a synchronous call throws; fails when it does not throw. */
export function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, but it returned');
}

/** Polls `check` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
