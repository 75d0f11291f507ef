import { describe, expect, it } from 'vitest';
import { LocalExecutor, task, type Future } from 'weftjs';
import { conformance } from './conformance/suite.js';
import { add, failPlain } from './fixtures/tasks.js';

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
      let bad: Future<never> | undefined;
      expect(() => {
        bad = ex.submit(() => {
          throw new Error('captured');
        });
      }).not.toThrow();
      expect(bad!.status).toBe('error');
      await expect(bad!).rejects.toThrow('captured');
      expect(ex.submit(failPlain, 'also captured').status).toBe('error');
      expect(await ok).toBe(3);
      // A downstream of finished futures runs inside submit too.
      expect(ex.submit(add, ok, ok).status).toBe('finished');
    });
  });

  it('runs closures that read and write the caller’s variables', async () => {
    await new LocalExecutor().start(async (ex) => {
      let counter = 0;
      const bump = (by: number): number => (counter += by);
      ex.submit(bump, 2);
      expect(counter).toBe(2);
      await ex.wait(ex.map(bump, [1, 1, 1]));
      expect(counter).toBe(5);
    });
  });

  it('starts async tasks inside submit and lets them interleave at their awaits', async () => {
    await new LocalExecutor().start(async (ex) => {
      const log: string[] = [];
      const step = task(async function step(name: string, ms: number) {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
        return name;
      });
      const a = ex.submit(step, 'a', 60);
      expect(log).toEqual(['a start']);
      expect(a.status).toBe('running');
      const b = ex.submit(step, 'b', 5);
      expect(log).toEqual(['a start', 'b start']);
      expect(await ex.wait([a, b])).toEqual(['a', 'b']);
      // b started after a but finished first: they interleaved.
      expect(log).toEqual(['a start', 'b start', 'b end', 'a end']);
    });
  });
  it('gives futures catch() and finally() like a Promise', async () => {
    await new LocalExecutor().start(async (ex) => {
      const failed = ex.submit(failPlain, 'boom');
      const caught = await failed.catch((error: unknown) => `caught ${(error as Error).message}`);
      expect(caught).toBe('caught boom');
      const fine = ex.submit(add, 1, 2);
      expect(await fine.catch(() => -1)).toBe(3);
      const order: string[] = [];
      expect(await fine.finally(() => order.push('finally'))).toBe(3);
      await expect(failed.finally(() => order.push('finally after error'))).rejects.toThrow('boom');
      expect(order).toEqual(['finally', 'finally after error']);
    });
  });
});

// The same contract with a cap on async tasks in flight.
conformance('LocalExecutor (concurrency 2)', () => new LocalExecutor({ concurrency: 2 }), {
  inline: true,
  immediate: true,
  parallel: false,
});

describe('LocalExecutor explain and resources', () => {
  it('does not say a ready task waits for resources that LocalExecutor does not limit', async () => {
    const gpu = task(async (ms: number) => new Promise((r) => setTimeout(r, ms)), {
      name: 'gpuJob',
      resources: { GPU: 1 },
    });
    await new LocalExecutor({ concurrency: 1 }).start(async (ex) => {
      const first = ex.submit(gpu, 300);
      const second = ex.submit(gpu, 1);
      const explanation = await ex.explain(second);
      expect(explanation.status).toBe('pending');
      expect(explanation.text).toContain('ready queue');
      expect(explanation.text).not.toContain('would wait for');
      await ex.wait([first, second]);
    });
  }, 10_000);
});
