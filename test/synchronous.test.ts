import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { LocalPoolExecutor } from 'weftjs';
import { conformance } from './conformance/suite.js';
import { whereAmI } from './fixtures/tasks.js';

conformance(
  'LocalPoolExecutor (synchronous)',
  () => new LocalPoolExecutor({ scheduler: 'synchronous' }),
  {
    inline: true,
    immediate: false,
    parallel: false,
  },
);

describe('synchronous scheduler specifics', () => {
  it('runs tasks one at a time, in submission and dependency order, in the caller', async () => {
    await new LocalPoolExecutor({ scheduler: 'synchronous' }).start(async (ex) => {
      const log: string[] = [];
      let running = 0;
      let maxRunning = 0;
      const step = async (name: string, ms: number): Promise<string> => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
        running--;
        return name;
      };
      const a = ex.submit(step, 'a', 30);
      const b = ex.submit(step, 'b', 1);
      const c = ex.submit((x: string, y: string) => step(x + y, 1), a, b);
      const d = ex.submit(step, 'd', 1);
      expect(a.status).toBe('pending'); // nothing runs inside submit
      expect(log).toEqual([]);
      expect(await ex.wait([a, b, c, d])).toEqual(['a', 'b', 'ab', 'd']);
      // One at a time: each task ends before the next starts, a long one included.
      expect(log).toEqual([
        'a start',
        'a end',
        'b start',
        'b end',
        'ab start',
        'ab end',
        'd start',
        'd end',
      ]);
      expect(maxRunning).toBe(1);
    });
  });

  it('gives the same order on every run', async () => {
    const orders: string[][] = [];
    for (let run = 0; run < 3; run++) {
      orders.push(
        await new LocalPoolExecutor({ scheduler: 'synchronous' }).start(async (ex) => {
          const log: string[] = [];
          const record = async (name: string): Promise<string> => {
            await new Promise((r) => setTimeout(r, Math.random() * 5));
            log.push(name);
            return name;
          };
          const first = ex.map(record, ['x', 'y', 'z']);
          ex.map((n: string) => record(`${n}!`), first);
          ex.submit(record, 'w');
          await new Promise<void>((resolve) => setTimeout(resolve, 0));
          await ex.shutdown();
          return log;
        }),
      );
    }
    expect(orders[0]).toHaveLength(7);
    expect(orders[1]).toEqual(orders[0]);
    expect(orders[2]).toEqual(orders[0]);
  });

  it('runs in the caller’s thread', async () => {
    await new LocalPoolExecutor({ scheduler: 'synchronous' }).start(async (ex) => {
      expect(await ex.submit(whereAmI)).toEqual({ pid: process.pid, threadId });
    });
  });
});
