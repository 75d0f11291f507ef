/**
 * A local cluster: a private redis-server plus `workers` cluster workers, as child processes or
 * as worker threads of this process. Nothing outlives the process that started it: workers
 * leave when their IPC channel closes, and redis-server is killed by its supervisor.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WorkerCrashedError } from '../core/errors.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';
import type { ClusterWorkerOptions } from './worker.js';

export interface LocalClusterOptions {
  workers: number;
  processes: boolean;
  resources: Record<string, number>;
  prefix: string;
}

export interface LocalCluster {
  readonly address: string;
  readonly workerNames: string[];
  stop(): Promise<void>;
}

const entry = new URL('./worker-entry.js', import.meta.url);

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const redis: RedisServerHandle = await startRedisServer();
  const stops: (() => Promise<void>)[] = [];
  const names: string[] = [];
  try {
    const started = Array.from({ length: options.workers }, (_, i) => {
      const name = `local-${i + 1}`;
      names.push(name);
      const workerOptions: ClusterWorkerOptions = {
        address: redis.address,
        name,
        concurrency: 1,
        resources: options.resources,
        prefix: options.prefix,
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
  return {
    address: redis.address,
    workerNames: names,
    stop: async () => {
      await Promise.all(stops.map((s) => s().catch(() => undefined)));
      await redis.stop();
    },
  };
}

function startProcess(options: ClusterWorkerOptions): Promise<() => Promise<void>> {
  const child: ChildProcess = fork(fileURLToPath(entry), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
    env: { ...process.env, WEFT_CLUSTER_WORKER: JSON.stringify(options) },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('message', (m: { t: string; message?: string }) => {
      if (m.t !== 'ready') {
        reject(
          new WorkerCrashedError(
            `Local cluster worker ${options.name} failed to start: ${m.message}`,
            { worker: options.name ?? '' },
          ),
        );
        return;
      }
      child.unref();
      (child.channel as { unref?: () => void } | undefined)?.unref?.();
      resolve(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.ref();
        child.send({ t: 'close' });
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      });
    });
    child.once('exit', (code, signal) =>
      reject(
        new WorkerCrashedError(
          `Local cluster worker ${options.name} exited while starting (code ${code}, signal ${signal}).`,
          { exitCode: code, signal, worker: options.name ?? '' },
        ),
      ),
    );
  });
}

function startThread(options: ClusterWorkerOptions): Promise<() => Promise<void>> {
  const worker = new Worker(entry, { workerData: options, execArgv: [] });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    worker.once('message', (m: { t: string; message?: string }) => {
      if (m.t !== 'ready') {
        reject(
          new WorkerCrashedError(
            `Local cluster worker ${options.name} failed to start: ${m.message}`,
            { worker: options.name ?? '' },
          ),
        );
        return;
      }
      worker.unref();
      resolve(async () => {
        worker.ref();
        worker.postMessage({ t: 'close' });
        const timer = setTimeout(() => void worker.terminate(), 10_000);
        await exited;
        clearTimeout(timer);
      });
    });
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(
        new WorkerCrashedError(
          `Local cluster worker ${options.name} exited while starting (code ${code}).`,
          { exitCode: code, worker: options.name ?? '' },
        ),
      ),
    );
  });
}
