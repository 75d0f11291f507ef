/**
 * Small named fixtures for pool crashes and aborts.
 */
import { appendFileSync } from 'node:fs';
import { task, taskContext } from 'weft';

export const exitWith = task(function exitWith(code: number): never {
  process.exit(code);
});

export const killSelf = task(function killSelf(signal: NodeJS.Signals): never {
  process.kill(process.pid, signal);
  throw new Error('still alive');
});

export const throwInTimer = task(async function throwInTimer(): Promise<void> {
  setTimeout(() => {
    throw new TypeError('thrown in a timer');
  }, 1);
  await new Promise((r) => setTimeout(r, 2_000));
});

export const allocate = task(function allocate(): number {
  const hoard: number[][] = [];
  for (;;) hoard.push(new Array<number>(100_000).fill(Math.random()));
});

/** Ignores its signal: a busy loop for `ms`. */
export const hang = task(function hang(ms: number): string {
  const end = Date.now() + ms;
  while (Date.now() < end);
  return 'finished anyway';
});

export const hangWithTimeout = task(
  function hangWithTimeout(ms: number): string {
    const end = Date.now() + ms;
    while (Date.now() < end);
    return 'finished anyway';
  },
  { timeoutMs: 300 },
);

/** Crashes its worker on the first attempt only. */
export const crashOnce = task(
  function crashOnce(): number {
    if (taskContext().attempt === 1) process.exit(7);
    return taskContext().attempt;
  },
  { retries: 1 },
);

export const whoAmI = task(function whoAmI(_n?: number): number {
  return process.pid;
});

/** Holds a GPU while it runs and records its interval. */
export const useGpu = task(
  function useGpu(file: string, ms: number): void {
    const start = Date.now();
    while (Date.now() - start < ms);
    appendFileSync(file, `${start} ${Date.now()}\n`);
  },
  { tags: ['resource:GPU=1'] },
);

export const needsTwoGpus = task(function needsTwoGpus(): void {}, { resources: { GPU: 2 } });
export const needsTpu = task(function needsTpu(): void {}, { tags: ['resource:TPU=1'] });

export const free = task(function free(file: string, ms: number): void {
  const start = Date.now();
  while (Date.now() - start < ms);
  appendFileSync(file, `free ${start} ${Date.now()}\n`);
});
