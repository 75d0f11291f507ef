/**
 * Starting one worker: a worker thread or a child process, behind the same small interface.
 * This is the one place that knows which; the pool runtime never does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerSetup } from './protocol.js';

export interface WorkerTransport {
  /** OS process id (threads: the parent's). */
  readonly pid: number | undefined;
  send(message: ToWorker): void;
  /** Lets the parent exit while this worker is idle. */
  unref(): void;
  ref(): void;
  /** Stops the worker (`graceful`: lets an idle one exit by itself first); resolves once it exited. */
  terminate(graceful?: boolean): Promise<void>;
}

export interface TransportEvents {
  message(message: FromWorker): void;
  /** An error the runtime reported before exiting (threads: uncaught error, out of memory). */
  error(error: Error): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface SpawnOptions {
  /** Heap limit per worker in MiB (threads: resourceLimits; processes: --max-old-space-size). */
  maxOldGenerationSizeMb?: number;
  maxYoungGenerationSizeMb?: number;
  stackSizeMb?: number;
}

export type Scheduler = 'threads' | 'processes';

const entry = new URL('./entry/worker.js', import.meta.url);

/**
 * Node flags that make TypeScript importable (tsx's `--import`/`--require` hooks), forwarded so
 * that a task module's own `.ts` imports resolve in workers as they do in the caller. Other flags
 * of the parent (test runners add many) are not forwarded: workers reject some of them.
 */
function loaderFlags(): string[] {
  const flags: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    if (!['--import', '--require', '-r', '--loader', '--experimental-loader'].includes(flag))
      continue;
    const value = inline ?? argv[i + 1];
    if (inline === undefined) i++;
    if (value && /tsx/.test(value)) flags.push(`${flag}=${value}`);
  }
  return flags;
}

export function spawnWorker(
  kind: Scheduler,
  setup: WorkerSetup,
  options: SpawnOptions,
  on: TransportEvents,
): WorkerTransport {
  return kind === 'threads' ? spawnThread(setup, options, on) : spawnProcess(setup, options, on);
}

function spawnThread(
  setup: WorkerSetup,
  options: SpawnOptions,
  on: TransportEvents,
): WorkerTransport {
  const worker = new Worker(entry, {
    workerData: setup,
    execArgv: loaderFlags(),
    resourceLimits: {
      ...(options.maxOldGenerationSizeMb
        ? { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb }
        : {}),
      ...(options.maxYoungGenerationSizeMb
        ? { maxYoungGenerationSizeMb: options.maxYoungGenerationSizeMb }
        : {}),
      ...(options.stackSizeMb ? { stackSizeMb: options.stackSizeMb } : {}),
    },
  });
  worker.on('message', (m: FromWorker) => on.message(m));
  worker.on('error', (e: Error) => on.error(e));
  worker.on('exit', (code) => on.exit(code, null));
  return {
    pid: process.pid,
    send: (message) => worker.postMessage(message),
    unref: () => worker.unref(),
    ref: () => worker.ref(),
    terminate: async () => {
      worker.ref(); // an unreferenced worker would let the loop end before it reports its exit
      await worker.terminate();
    },
  };
}

function spawnProcess(
  setup: WorkerSetup,
  options: SpawnOptions,
  on: TransportEvents,
): WorkerTransport {
  const execArgv = loaderFlags();
  if (options.maxOldGenerationSizeMb)
    execArgv.push(`--max-old-space-size=${options.maxOldGenerationSizeMb}`);
  if (options.maxYoungGenerationSizeMb)
    execArgv.push(
      `--max-semi-space-size=${Math.max(1, Math.round(options.maxYoungGenerationSizeMb / 3))}`,
    );
  if (options.stackSizeMb) execArgv.push(`--stack-size=${Math.round(options.stackSizeMb * 1024)}`);
  // 'advanced' serialization is v8's structured clone: Map, Set, Date, BigInt and typed arrays
  // cross intact, as they do to a thread.
  const child: ChildProcess = fork(fileURLToPath(entry), [], {
    serialization: 'advanced',
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      WEFT_WORKER_NAME: setup.name,
      WEFT_WORKER_CONCURRENCY: String(setup.concurrency),
      ...(setup.encoded ? { WEFT_WORKER_ENCODED: '1' } : {}),
    },
  });
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  child.on('message', (m) => on.message(m as FromWorker));
  child.on('error', (e) => on.error(e));
  child.on('exit', (code, signal) => on.exit(code, signal));
  return {
    pid: child.pid,
    send: (message) => {
      if (child.connected) child.send(message);
    },
    unref: () => {
      child.unref();
      (child.channel as { unref?: () => void } | undefined)?.unref?.();
    },
    ref: () => {
      child.ref();
      (child.channel as { ref?: () => void } | undefined)?.ref?.();
    },
    terminate: async (graceful = false) => {
      if (exited) return;
      child.ref(); // an unreferenced child would let the loop end before its exit is reported
      if (graceful && child.connected) {
        // An idle worker leaves by itself when its channel closes (entry/worker.ts).
        child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
        await exitedPromise;
        clearTimeout(timer);
        return;
      }
      child.kill('SIGKILL');
      await exitedPromise;
    },
  };
}
