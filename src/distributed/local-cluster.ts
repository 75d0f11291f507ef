/**
 * A local cluster: a private redis-server plus `workers` cluster workers, as child processes or
 * as worker threads of this process. Nothing outlives the process that started it: workers
 * leave when their IPC channel closes, and redis-server is killed by its supervisor.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WorkerCrashedError } from '../core/errors.js';
import { workerAllocatorEnv } from './allocator.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';
import type { ClusterWorkerOptions } from './worker.js';

export interface LocalClusterOptions {
  workers: number;
  processes: boolean;
  /** Tasks in flight per worker (default 1). */
  concurrency?: number;
  resources: Record<string, number>;
  prefix: string;
  /** Secrets for the workers: sent over IPC (processes) or workerData (threads), never argv. */
  secret?: string[];
  /** Workers log their activity to stderr. */
  debug?: boolean;
}

/** What a local-cluster worker is started with (workerData, or JSON in its environment). */
export interface LocalWorkerData extends ClusterWorkerOptions {
  /** Log to stderr: the executor's `debug`, parsed once by it (never re-read from WEFT_DEBUG). */
  debug: boolean;
}

export interface LocalCluster {
  readonly address: string;
  readonly workerNames: string[];
  /** Says how, when the cluster's redis-server dies before `stop()`. */
  onRedisExit(listener: (how: string) => void): void;
  stop(): Promise<void>;
}

const entry = new URL('./worker-entry.js', import.meta.url);

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const redis: RedisServerHandle = await startRedisServer();
  const stops: ((now?: boolean) => Promise<void>)[] = [];
  const names: string[] = [];
  try {
    const started = Array.from({ length: options.workers }, (_, i) => {
      const name = `local-${i + 1}`;
      names.push(name);
      const workerOptions: LocalWorkerData = {
        address: redis.address,
        name,
        concurrency: options.concurrency ?? 1,
        resources: options.resources,
        prefix: options.prefix,
        ...(options.secret ? { secret: options.secret } : {}),
        debug: options.debug ?? false,
      };
      return options.processes ? startProcess(workerOptions) : startThread(workerOptions);
    });
    for (const result of await Promise.allSettled(started)) {
      if (result.status === 'fulfilled') stops.push(result.value);
    }
    const failed = (await Promise.allSettled(started)).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (error) {
    await Promise.all(stops.map((s) => s().catch(() => undefined)));
    await redis.stop();
    throw error;
  }
  let redisGone = false;
  redis.onExit(() => (redisGone = true));
  return {
    address: redis.address,
    workerNames: names,
    onRedisExit: (listener) => redis.onExit(listener),
    stop: async () => {
      // Without Redis a worker can neither finish nor leave cleanly: stop it at once.
      await Promise.all(stops.map((s) => s(redisGone).catch(() => undefined)));
      await redis.stop();
    },
  };
}

/** One local worker, as a child process or a thread: how to talk to it and stop it. */
interface Started {
  once(event: 'message', listener: (m: { t: string; message?: string }) => void): void;
  once(
    event: 'exit',
    listener: (code: number | null, signal?: NodeJS.Signals | null) => void,
  ): void;
  /** Lets this process exit while the worker idles. */
  release(): void;
  /** Asks it to finish and leave; kills it after 10 s, or at once with `now`. */
  stop(now?: boolean): Promise<void>;
}

/** Resolves with a stop function once the worker says it is ready; rejects if it fails first. */
function whenReady(worker: Started, name: string): Promise<(now?: boolean) => Promise<void>> {
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => {
      if (m.t !== 'ready') {
        reject(
          new WorkerCrashedError(`Local cluster worker ${name} failed to start: ${m.message}`, {
            worker: name,
          }),
        );
        return;
      }
      worker.release();
      resolve((now) => worker.stop(now));
    });
    worker.once('exit', (code, signal) =>
      reject(
        new WorkerCrashedError(
          `Local cluster worker ${name} exited while starting (code ${code}${signal ? `, signal ${signal}` : ''}).`,
          {
            exitCode: code,
            signal: signal ?? null,
            worker: name,
          },
        ),
      ),
    );
  });
}

async function stopWithin(
  exited: Promise<void>,
  ask: () => void,
  kill: () => void,
  now = false,
): Promise<void> {
  if (now) kill();
  else ask();
  const timer = setTimeout(kill, 10_000);
  await exited;
  clearTimeout(timer);
}

function startProcess(options: LocalWorkerData): Promise<(now?: boolean) => Promise<void>> {
  const { secret, ...visible } = options;
  // The secret goes over the IPC channel: the environment and argv show in `ps e` and /proc.
  const child: ChildProcess = fork(fileURLToPath(entry), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
    env: {
      ...process.env,
      ...workerAllocatorEnv(),
      WEFT_CLUSTER_WORKER: JSON.stringify({ ...visible, secretOverIpc: secret !== undefined }),
    },
  });
  if (secret) child.send({ t: 'secret', secret });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return whenReady(
    {
      once: (event: string, listener: (...a: any[]) => void) => child.once(event, listener),
      release: () => {
        child.unref();
        (child.channel as { unref?: () => void } | undefined)?.unref?.();
      },
      stop: async (now) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.ref();
        await stopWithin(
          exited,
          () => child.send({ t: 'close' }),
          () => child.kill('SIGKILL'),
          now,
        );
      },
    },
    options.name ?? '',
  );
}

function startThread(options: LocalWorkerData): Promise<(now?: boolean) => Promise<void>> {
  const worker = new Worker(entry, { workerData: options, execArgv: [] });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const ready = whenReady(
    {
      once: (event: string, listener: (...a: any[]) => void) => worker.once(event, listener),
      release: () => worker.unref(),
      stop: async (now) => {
        worker.ref();
        await stopWithin(
          exited,
          () => worker.postMessage({ t: 'close' }),
          () => void worker.terminate(),
          now,
        );
      },
    },
    options.name ?? '',
  );
  worker.once('error', () => undefined); // reported through 'exit' while starting
  return ready;
}
