/**
 * `defaultExecutor()`: the executor configuration asks for.
 */
import { readEnvironment } from '../core/config.js';
import { ConfigurationError } from '../core/errors.js';
import type { Executor } from '../core/types.js';
import { LocalExecutor } from './local.js';
import { LocalPoolExecutor } from './pool.js';
import { DistributedExecutor } from './distributed.js';

/**
 * Returns a new, unstarted executor chosen by `WEFT_EXECUTOR` (`local`, `synchronous`, `threads`,
 * `processes`, `distributed` with `WEFT_ADDRESS` or a local cluster), with `WEFT_WORKERS` workers
 * and `WEFT_CONCURRENCY` tasks in flight per worker (on `local`: in all); `LocalExecutor` when
 * nothing is configured. Throws `ConfigurationError` for an unknown name or a bad value.
 */
export function defaultExecutor(): Executor {
  const config = readEnvironment();
  const concurrency = config.concurrency;
  if (config.executor !== undefined && config.executor !== 'local') {
    const valid = config.executor === 'synchronous' ? concurrency === 1 : concurrency !== Infinity;
    if (concurrency !== undefined && !valid) {
      throw new ConfigurationError(
        config.executor === 'synchronous'
          ? `WEFT_CONCURRENCY is ${concurrency}, but the synchronous executor runs one task at a time. Unset WEFT_CONCURRENCY (or set it to 1), or use WEFT_EXECUTOR=threads or processes.`
          : `WEFT_CONCURRENCY is Infinity, which only the local executor takes; the ${config.executor} executor needs a positive integer (tasks in flight per worker).`,
      );
    }
  }
  const withConcurrency = concurrency === undefined ? {} : { concurrency };
  switch (config.executor) {
    case undefined:
    case 'local':
      return new LocalExecutor(withConcurrency);
    case 'synchronous':
    case 'threads':
    case 'processes':
      return new LocalPoolExecutor({
        scheduler: config.executor,
        ...(config.workers ? { workers: config.workers } : {}),
        ...withConcurrency,
      });
    case 'distributed':
      return new DistributedExecutor({
        ...(config.address ? { address: config.address } : {}),
        ...(config.workers ? { workers: config.workers } : {}),
        ...withConcurrency,
      });
  }
}
