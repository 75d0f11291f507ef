import { describe, expect, it } from 'vitest';
import { LocalPoolExecutor } from 'weft';
import { conformance } from './conformance/suite.js';

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
      const step = async (name: string): Promise<string> => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push(name);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return name;
      };
      const a = ex.submit(step, 'a');
      const b = ex.submit(step, 'b');
      const c = ex.submit((x: string, y: string) => step(x + y), a, b);
      const d = ex.submit(step, 'd');
      expect(a.status).toBe('pending'); // nothing runs inside submit
      await ex.wait([a, b, c, d]);
      expect(log).toEqual(['a', 'b', 'ab', 'd']); // ready tasks keep submission order
      expect(maxRunning).toBe(1);
    });
  });
});
