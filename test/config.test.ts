/**
 * Configuration: WEFT_EXECUTOR chooses what defaultExecutor() returns; invalid values and invalid
 * executor options throw ConfigurationError. Where a task runs (pid, thread) tells the kinds apart.
 */
import { threadId } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  LocalExecutor,
  LocalPoolExecutor,
  WeftError,
  defaultExecutor,
} from 'weftjs';
import { whereAmI } from './fixtures/tasks.js';
import { thrown } from './helpers/util.js';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('configuration', () => {
  it('defaultExecutor() is a LocalExecutor when nothing is configured', () => {
    delete process.env.WEFT_EXECUTOR;
    expect(defaultExecutor()).toBeInstanceOf(LocalExecutor);
  });

  it('WEFT_EXECUTOR=local gives a LocalExecutor', async () => {
    process.env.WEFT_EXECUTOR = 'local';
    const ex = defaultExecutor();
    expect(ex).toBeInstanceOf(LocalExecutor);
    expect(await ex.start((e) => e.submit(whereAmI))).toEqual({ pid: process.pid, threadId });
  });

  it('WEFT_EXECUTOR=synchronous gives a LocalPoolExecutor running in the caller', async () => {
    process.env.WEFT_EXECUTOR = 'synchronous';
    const ex = defaultExecutor();
    expect(ex).toBeInstanceOf(LocalPoolExecutor);
    const f = await ex.start((e) => {
      const future = e.submit(whereAmI);
      expect(future.status).toBe('pending'); // not LocalExecutor: nothing runs inside submit
      return future;
    });
    expect(f).toEqual({ pid: process.pid, threadId });
  });

  it(
    'WEFT_EXECUTOR=threads gives a LocalPoolExecutor on worker threads',
    { timeout: 30_000 },
    async () => {
      process.env.WEFT_EXECUTOR = 'threads';
      const ex = defaultExecutor();
      expect(ex).toBeInstanceOf(LocalPoolExecutor);
      const place = await ex.start((e) => e.submit(whereAmI));
      expect(place.pid).toBe(process.pid);
      expect(place.threadId).not.toBe(threadId);
    },
  );

  it(
    'WEFT_EXECUTOR=processes gives a LocalPoolExecutor on child processes',
    { timeout: 30_000 },
    async () => {
      process.env.WEFT_EXECUTOR = 'processes';
      const ex = defaultExecutor();
      expect(ex).toBeInstanceOf(LocalPoolExecutor);
      const place = await ex.start((e) => e.submit(whereAmI));
      expect(place.pid).not.toBe(process.pid);
    },
  );

  it('WEFT_EXECUTOR=distributed with WEFT_ADDRESS gives a DistributedExecutor', () => {
    process.env.WEFT_EXECUTOR = 'distributed';
    process.env.WEFT_ADDRESS = 'redis://127.0.0.1:1';
    expect(defaultExecutor()).toBeInstanceOf(DistributedExecutor);
  });

  it('rejects an unknown WEFT_EXECUTOR with ConfigurationError listing the valid names', () => {
    for (const bad of ['dask', 'thread', 'LOCALX']) {
      process.env.WEFT_EXECUTOR = bad;
      const error = thrown(() => defaultExecutor());
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toBeInstanceOf(WeftError);
      expect((error as ConfigurationError).code).toBe('CONFIGURATION');
      const message = (error as Error).message;
      expect(message).toContain(bad);
      for (const name of ['local', 'synchronous', 'threads', 'processes', 'distributed'])
        expect(message).toContain(name);
    }
  });

  it('rejects invalid executor options with ConfigurationError', () => {
    for (const workers of [0, -1, 1.5, Number.NaN, 'x' as never]) {
      for (const scheduler of ['threads', 'processes'] as const) {
        const error = thrown(() => new LocalPoolExecutor({ scheduler, workers }));
        expect(error).toBeInstanceOf(ConfigurationError);
        expect((error as ConfigurationError).code).toBe('CONFIGURATION');
      }
    }
    const scheduler = thrown(() => new LocalPoolExecutor({ scheduler: 'fibers' as never }));
    expect(scheduler).toBeInstanceOf(ConfigurationError);
    expect((scheduler as Error).message).toContain('fibers');
    for (const name of ['synchronous', 'threads', 'processes'])
      expect((scheduler as Error).message).toContain(name);
    expect(() => new LocalPoolExecutor({ resources: { GPU: -1 } })).toThrow(ConfigurationError);
    expect(() => new LocalPoolExecutor({ graceMs: -5 })).toThrow(ConfigurationError);
    expect(() => new LocalPoolExecutor('threads' as never)).toThrow(ConfigurationError);
    expect(() => new DistributedExecutor({ workers: 0 })).toThrow(ConfigurationError);
    expect(() => new DistributedExecutor({ address: 'http://example.com' })).toThrow(
      ConfigurationError,
    );
  });

  it('constructing an executor acquires nothing', () => {
    const before = process.getActiveResourcesInfo().length;
    new LocalPoolExecutor({ scheduler: 'processes', workers: 2 });
    new LocalPoolExecutor({ scheduler: 'threads', workers: 2 });
    new DistributedExecutor({ workers: 2 });
    expect(process.getActiveResourcesInfo().length).toBe(before);
  });
});
