/**
 * A cluster worker as its own process (the local cluster's entry), for tests that need workers
 * apart from the client: killed, counted, or on another connection than the client's.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterWorkerOptions } from 'weftjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const workerEntry = join(root, 'dist/distributed/worker-entry.js');

/** Starts a worker process; resolves once it has joined. The caller kills it (`stopWorker`). */
export async function startWorkerProcess(
  options: Partial<ClusterWorkerOptions> & { address: string; name: string },
): Promise<ChildProcess> {
  const { secret, ...rest } = options;
  const child = fork(workerEntry, [], {
    env: {
      ...process.env,
      WEFT_CLUSTER_WORKER: JSON.stringify({ concurrency: 1, ...rest, secretOverIpc: !!secret }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  // As the local cluster does: a secret goes over IPC, never through argv or environment.
  if (secret) child.send({ t: 'secret', secret });
  const message = await new Promise<{ t: string; message?: string }>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) =>
      reject(new Error(`worker ${options.name} exited with ${code} while starting`)),
    );
  });
  if (message.t !== 'ready') {
    child.kill('SIGKILL');
    throw new Error(`worker ${options.name} failed to start: ${message.message}`);
  }
  return child;
}

/** Kills a worker process and waits until it is gone. */
export async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}
