/**
 * Entry of a local-cluster worker, as a child process (argv/env) or a worker thread (workerData).
 * A child leaves when its parent goes away (the IPC channel closes), even after a SIGKILL.
 */
import { once } from 'node:events';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { LocalWorkerData } from './local-cluster.js';
import { startClusterWorker } from './worker.js';

const { debug, ...options }: LocalWorkerData & { secretOverIpc?: boolean } = isMainThread
  ? (JSON.parse(process.env.WEFT_CLUSTER_WORKER ?? '{}') as LocalWorkerData)
  : (workerData as LocalWorkerData);
// A child process gets its secret as the first IPC message, never through argv or environment.
if (isMainThread && options.secretOverIpc) {
  const [message] = (await once(process, 'message')) as [{ t?: string; secret?: string[] }];
  if (message.t === 'secret' && message.secret) options.secret = message.secret;
}
delete options.secretOverIpc;
const tell = (message: unknown): void => {
  if (isMainThread) process.send?.(message);
  else parentPort?.postMessage(message);
};

const handle = await startClusterWorker({
  ...options,
  log: debug ? (line) => process.stderr.write(`[weft] ${line}\n`) : undefined,
}).catch((error: unknown) => {
  tell({ t: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
tell({ t: 'ready', name: handle.name });

const leave = (): void => {
  void handle.close().finally(() => process.exit(0));
};
if (isMainThread) {
  process.on('disconnect', () => process.exit(0)); // the parent died: leave at once
  process.on('SIGTERM', leave);
  process.on('SIGINT', leave);
  process.on('message', (m: { t?: string }) => {
    if (m.t === 'close') leave();
  });
} else {
  parentPort!.on('message', (m: { t?: string }) => {
    if (m.t === 'close') void handle.close().then(() => parentPort!.close());
  });
}
