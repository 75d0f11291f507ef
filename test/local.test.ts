import { describe, expect, it } from 'vitest';
import { LocalExecutor, task } from 'weft';
import { conformance } from './conformance/suite.js';
import { add } from './conformance/tasks.js';

conformance('LocalExecutor', () => new LocalExecutor(), {
  inline: true,
  immediate: true,
  parallel: false,
});

describe('LocalExecutor specifics', () => {
  it('settles a synchronous task inside submit, capturing errors in the future', async () => {
    await new LocalExecutor().start(async (ex) => {
      const ok = ex.submit(add, 1, 2);
      expect(ok.status).toBe('finished');
      const bad = ex.submit(() => {
        throw new Error('captured');
      });
      expect(bad.status).toBe('error');
      await expect(bad).rejects.toThrow('captured');
      expect(await ok).toBe(3);
    });
  });

  it('starts async tasks inside submit and lets them interleave at their awaits', async () => {
    await new LocalExecutor().start(async (ex) => {
      const log: string[] = [];
      const step = task(async function step(name: string) {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, 20));
        log.push(`${name} end`);
      });
      const a = ex.submit(step, 'a');
      const b = ex.submit(step, 'b');
      expect(log).toEqual(['a start', 'b start']);
      await ex.wait([a, b]);
      expect(log).toEqual(['a start', 'b start', 'a end', 'b end']);
    });
  });
});
