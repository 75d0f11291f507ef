import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  LocalExecutor,
  LocalPoolExecutor,
  defaultExecutor,
} from 'weft';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('configuration', () => {
  it('defaultExecutor() is LocalExecutor when nothing is configured', () => {
    delete process.env.WEFT_EXECUTOR;
    expect(defaultExecutor()).toBeInstanceOf(LocalExecutor);
  });

  it('WEFT_EXECUTOR chooses the executor, WEFT_WORKERS its size', () => {
    for (const [name, scheduler] of [
      ['synchronous', 'synchronous'],
      ['threads', 'threads'],
      ['processes', 'processes'],
    ] as const) {
      process.env.WEFT_EXECUTOR = name;
      const ex = defaultExecutor();
      expect(ex).toBeInstanceOf(LocalPoolExecutor);
      expect((ex as LocalPoolExecutor).scheduler).toBe(scheduler);
    }
    process.env.WEFT_EXECUTOR = 'local';
    expect(defaultExecutor()).toBeInstanceOf(LocalExecutor);
    process.env.WEFT_EXECUTOR = 'distributed';
    process.env.WEFT_ADDRESS = 'redis://127.0.0.1:1';
    expect(defaultExecutor()).toBeInstanceOf(DistributedExecutor);
  });

  it('rejects an unknown WEFT_EXECUTOR with ConfigurationError listing the valid names', () => {
    process.env.WEFT_EXECUTOR = 'dask';
    expect(() => defaultExecutor()).toThrow(ConfigurationError);
    expect(() => defaultExecutor()).toThrow(/local, synchronous, threads, processes, distributed/);
    process.env.WEFT_EXECUTOR = 'threads';
    process.env.WEFT_WORKERS = 'many';
    expect(() => defaultExecutor()).toThrow(/WEFT_WORKERS/);
  });

  it('rejects invalid executor options with ConfigurationError', () => {
    for (const workers of [0, -1, 1.5, 'x' as never]) {
      expect(() => new LocalPoolExecutor({ workers })).toThrow(ConfigurationError);
    }
    expect(() => new LocalPoolExecutor({ scheduler: 'fibers' as never })).toThrow(
      /synchronous, threads, processes/,
    );
    expect(() => new LocalPoolExecutor({ resources: { GPU: -1 } })).toThrow(ConfigurationError);
    expect(() => new LocalPoolExecutor({ graceMs: -5 })).toThrow(ConfigurationError);
    expect(() => new DistributedExecutor({ workers: 0 })).toThrow(ConfigurationError);
  });

  it('constructing an executor acquires nothing', () => {
    const before = process.getActiveResourcesInfo().length;
    new LocalPoolExecutor({ scheduler: 'processes', workers: 4 });
    new DistributedExecutor({ workers: 2 });
    expect(process.getActiveResourcesInfo().length).toBe(before);
  });
});
