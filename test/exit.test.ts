/**
 * A script that uses an executor exits by itself after shutdown: no thread, process, socket or
 * timer is left behind, also after a cancelPending shutdown with a task that ignores its signal.
 * Each script prints its results, then `done <epoch ms>` right after shutdown resolved; the test
 * measures how long the process lingered after that.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const index = fileURLToPath(new URL('../dist/index.js', import.meta.url));

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout lines before the `done` line. */
  out: string[];
  /** Milliseconds between shutdown resolving and the process exiting. */
  lingerMs: number;
  stderr: string;
}

function runScript(body: string, timeoutMs: number): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-exit-'));
  writeFileSync(
    join(dir, 'tasks.mjs'),
    `import { task } from ${JSON.stringify(index)};
     export const add = task(function add(a, b) { return a + b; });
     export const hang = task(function hang(ms) { const end = Date.now() + ms; while (Date.now() < end); return 1; });
     export const nap = task(function nap(ms) { return new Promise((r) => setTimeout(() => r(ms), ms)); });`,
  );
  const script = join(dir, 'script.mjs');
  writeFileSync(
    script,
    `import { LocalPoolExecutor, LocalExecutor, DistributedExecutor } from ${JSON.stringify(index)};
     import { add, hang, nap } from './tasks.mjs';
     const done = () => console.log('done ' + Date.now());
     ${body}`,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `the script did not exit by itself within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      const exited = Date.now();
      clearTimeout(timer);
      const all = stdout.split('\n').filter(Boolean);
      const doneLine = all.find((l) => l.startsWith('done '));
      resolve({
        code,
        signal,
        out: all.filter((l) => !l.startsWith('done ')),
        lingerMs: doneLine ? exited - Number(doneLine.slice(5)) : Number.POSITIVE_INFINITY,
        stderr,
      });
    });
  });
}

describe('exiting by itself', () => {
  for (const scheduler of ['threads', 'processes'] as const) {
    it(`after shutdown of a ${scheduler} pool`, { timeout: 40_000 }, async () => {
      const result = await runScript(
        `const ex = await new LocalPoolExecutor({ scheduler: '${scheduler}', workers: 2 }).start();
         const r = await ex.wait(ex.map(add, [1, 2, 3], [10, 20, 30]));
         const queued = ex.map(nap, [50, 50, 50, 50]);
         await ex.shutdown();
         console.log(JSON.stringify(r), queued.map((f) => f.status).join(','));
         done();`,
        30_000,
      );
      expect(result.code).toBe(0);
      expect(result.out).toEqual(['[11,22,33] finished,finished,finished,finished']);
      expect(result.lingerMs).toBeLessThan(5_000);
    });

    it(
      `after shutdown({ cancelPending: true }) of a ${scheduler} pool running a task that ignores its signal`,
      { timeout: 40_000 },
      async () => {
        const result = await runScript(
          `const ex = await new LocalPoolExecutor({ scheduler: '${scheduler}', workers: 1, graceMs: 200 }).start();
           const f = ex.submit(hang, 60_000);
           const queued = ex.submit(add, 1, 1);
           await new Promise((r) => setTimeout(r, 300));
           await ex.shutdown({ cancelPending: true });
           const outcome = await Promise.allSettled([f, queued]);
           console.log(outcome.map((o) => o.status + ':' + (o.reason?.name ?? o.value)).join(' '));
           done();`,
          30_000,
        );
        expect(result.code).toBe(0);
        expect(result.out).toEqual(['rejected:TaskCancelledError rejected:TaskCancelledError']);
        expect(result.lingerMs).toBeLessThan(5_000);
      },
    );
  }

  it(
    'after using threads, processes, synchronous and local executors in one script',
    { timeout: 40_000 },
    async () => {
      const result = await runScript(
        `const out = [];
       for (const scheduler of ['threads', 'processes', 'synchronous']) {
         out.push(await new LocalPoolExecutor({ scheduler, workers: 2 }).start((ex) => ex.submit(add, 1, 2)));
       }
       const local = await new LocalExecutor().start();
       out.push(await local.submit(nap, 20));
       await local.shutdown();
       console.log(out.join(','));
       done();`,
        30_000,
      );
      expect(result.code).toBe(0);
      expect(result.out).toEqual(['3,3,3,20']);
      expect(result.lingerMs).toBeLessThan(5_000);
    },
  );

  it(
    'after shutdown of a local cluster (redis-server and worker processes)',
    { timeout: 60_000 },
    async () => {
      const result = await runScript(
        `const ex = await new DistributedExecutor({ workers: 2, localProcesses: true }).start();
         console.log(await ex.submit(add, 20, 22));
         await ex.shutdown();
         done();`,
        45_000,
      );
      expect(result.code).toBe(0);
      expect(result.out).toEqual(['42']);
      expect(result.lingerMs).toBeLessThan(5_000);
    },
  );
});
