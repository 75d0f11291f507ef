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
