/**
 * The shared conformance suite, unchanged, on DistributedExecutor local clusters: workers as
 * worker threads of the test process, and as child processes.
 */
import { DistributedExecutor } from 'weftjs';
import { conformance } from '../conformance/suite.js';

conformance(
  'DistributedExecutor (local cluster, threads)',
  () => new DistributedExecutor({ workers: 2, localProcesses: false }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new DistributedExecutor({ workers: 1, localProcesses: false }),
  },
);

conformance(
  'DistributedExecutor (local cluster, processes)',
  () => new DistributedExecutor({ workers: 2, localProcesses: true }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new DistributedExecutor({ workers: 1, localProcesses: true }),
  },
);

// The same contract with several tasks in flight per cluster worker. The priority tests need one
// task at a time (`single`): a cluster worker fetches several jobs at once and their payloads
// arrive in any order, so the start order of tasks sharing a worker is not defined.
conformance(
  'DistributedExecutor (local cluster, threads, concurrency 4)',
  () => new DistributedExecutor({ workers: 2, localProcesses: false, concurrency: 4 }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new DistributedExecutor({ workers: 1, localProcesses: false, concurrency: 1 }),
  },
);

conformance(
  'DistributedExecutor (local cluster, processes, concurrency 4)',
  () => new DistributedExecutor({ workers: 2, localProcesses: true, concurrency: 4 }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () => new DistributedExecutor({ workers: 1, localProcesses: true, concurrency: 1 }),
  },
);
