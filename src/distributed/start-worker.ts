/**
 * `startClusterWorker()` for the public API, loading BullMQ only when a worker starts.
 */
import type { ClusterWorkerHandle, ClusterWorkerOptions } from './worker.js';

/**
 * Joins the cluster at `options.address` as a worker (what `weft worker` runs): takes tasks,
 * runs them on a local pool, and leaves when `close()` is called (running tasks finish first).
 */
export async function startClusterWorker(
  options: ClusterWorkerOptions,
): Promise<ClusterWorkerHandle> {
  const { startClusterWorker: start } = await import('./worker.js');
  return start(options);
}
