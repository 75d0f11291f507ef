/**
 * `defaultExecutor()`: the executor configuration asks for.
 */
import { readEnvironment } from '../core/config.js';
import type { Executor } from '../core/types.js';
import { LocalExecutor } from './local.js';
import { LocalPoolExecutor } from './pool.js';
import { DistributedExecutor } from './distributed.js';

/**
 * Returns a new, unstarted executor chosen by `WEFT_EXECUTOR` (`local`, `synchronous`, `threads`,
 * `processes`, `distributed` with `WEFT_ADDRESS` or a local cluster), with `WEFT_WORKERS` workers; `LocalExecutor`
 * when nothing is configured. Throws `ConfigurationError` for an unknown name.
 */
export function defaultExecutor(): Executor {
  const config = readEnvironment();
  switch (config.executor) {
    case undefined:
    case 'local':
      return new LocalExecutor();
    case 'synchronous':
    case 'threads':
    case 'processes':
      return new LocalPoolExecutor({
        scheduler: config.executor,
        ...(config.workers ? { workers: config.workers } : {}),
      });
    case 'distributed':
      return new DistributedExecutor({
        ...(config.address ? { address: config.address } : {}),
        ...(config.workers ? { workers: config.workers } : {}),
      });
  }
}
