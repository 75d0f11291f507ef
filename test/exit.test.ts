/**
 * A script that uses an executor exits by itself after shutdown: no thread, process, socket or
 * timer is left behind, also after a cancelPending shutdown with a task that ignores its signal.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const index = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function runScript(
  body: string,
  timeoutMs: number,
): Promise<{ code: number | null; out: string; ms: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-exit-'));
  const tasks = join(dir, 'tasks.mjs');
  writeFileSync(
    tasks,
    `import { task } from ${JSON.stringify(index)};
     export const add = task(function add(a, b) { return a + b; });
     export const hang = task(function hang(ms) { const end = Date.now() + ms; while (Date.now() < end); return 1; });`,
  );
  const script = join(dir, 'script.mjs');
  writeFileSync(
    script,
    `import { LocalPoolExecutor, LocalExecutor, DistributedExecutor } from ${JSON.stringify(index)};\nimport { add, hang } from './tasks.mjs';\n${body}`,
  );
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the script did not exit by itself within ${timeoutMs} ms; output: ${out}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - started });
    });
  });
}

describe('exiting by itself', () => {
  for (const scheduler of ['threads', 'processes'] as const) {
    it(`after shutdown of a ${scheduler} pool`, { timeout: 30_000 }, async () => {
      const { code, out } = await runScript(
        `const ex = await new LocalPoolExecutor({ scheduler: '${scheduler}', workers: 2 }).start();
         const r = await ex.wait(ex.map(add, [1, 2, 3], [10, 20, 30]));
         await ex.shutdown();
         console.log(JSON.stringify(r));`,
        20_000,
      );
      expect(code).toBe(0);
      expect(out.trim()).toBe('[11,22,33]');
    });

    it(
      `after shutdown({ cancelPending }) of a ${scheduler} pool running a task that ignores its signal`,
      { timeout: 30_000 },
      async () => {
        const { code, out, ms } = await runScript(
          `const ex = await new LocalPoolExecutor({ scheduler: '${scheduler}', workers: 1, graceMs: 200 }).start();
         const f = ex.submit(hang, 60_000);
         const queued = ex.submit(add, 1, 1);
         await new Promise((r) => setTimeout(r, 200));
         await ex.shutdown({ cancelPending: true });
         const outcome = await Promise.allSettled([f, queued]);
         console.log(outcome.map((o) => o.status + ':' + (o.reason?.name ?? o.value)).join(' '));`,
          20_000,
        );
        expect(code).toBe(0);
        expect(out.trim()).toBe('rejected:TaskCancelledError rejected:TaskCancelledError');
        expect(ms).toBeLessThan(15_000);
      },
    );
  }

  it(
    'after shutdown of a local cluster (redis-server and worker processes)',
    { timeout: 60_000 },
    async () => {
      const { code, out } = await runScript(
        `const ex = await new DistributedExecutor({ workers: 2, localProcesses: true }).start();
       console.log(await ex.submit(add, 20, 22));
       await ex.shutdown();`,
        45_000,
      );
      expect(code).toBe(0);
      expect(out.trim()).toBe('42');
    },
  );
});
