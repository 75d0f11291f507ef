/**
 * Several tasks in flight per cluster worker: `DistributedExecutor({ concurrency })` for a local
 * cluster, and `weft worker --concurrency N --pool-size P` from the command line (N tasks on P
 * threads). Rendezvous tasks prove that N tasks really are in flight at once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DistributedExecutor, type WorkerEvent } from 'weftjs';
import { rendezvous } from '../fixtures/concurrent.js';
import { startRedis } from '../helpers/redis.js';
import { tempFile, until } from '../helpers/util.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('DistributedExecutor with several tasks per worker', () => {
  it(
    'runs N tasks that can only finish together on one local worker with concurrency N, each with its own context',
    { timeout: 60_000 },
    async () => {
      const n = 12;
      await new DistributedExecutor({ workers: 1, concurrency: n, localProcesses: true }).start(
        async (ex) => {
          const file = tempFile('rendezvous');
          const futures = Array.from({ length: n }, () => ex.submit(rendezvous, file, n));
          const results = await ex.wait(futures);
          // One worker process, at most min(n, cores) pool threads inside it.
          expect(new Set(results.map((r) => r.pid)).size).toBe(1);
          results.forEach((r, i) => {
            expect(r.before).toBe(futures[i]!.key);
            expect(r.after).toBe(futures[i]!.key);
          });
        },
      );
    },
  );

  it(
    'weft worker --concurrency 8 --pool-size 2 runs 8 tasks at once on 2 threads',
    { timeout: 60_000 },
    async () => {
      const server = await startRedis();
      cleanups.push(() => server.stop(true));
      const worker: ChildProcess = spawn(
        process.execPath,
        [cli, 'worker', '--address', server.address, '--concurrency', '8', '--pool-size', '2'],
        { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      worker.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      cleanups.push(() => {
        if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
      });
      await until(() => stderr.includes('concurrency 8'), 'the worker to join', 30_000);
      expect(stderr).toContain('concurrency 8 on 2 threads');
      const ex = await new DistributedExecutor({ address: server.address }).start();
      cleanups.push(() => ex.shutdown({ cancelPending: true }));
      const joined: WorkerEvent[] = [];
      ex.events.on('joined', (e) => joined.push(e));
      const file = tempFile('rendezvous');
      const results = await ex.wait(
        Array.from({ length: 8 }, () => ex.submit(rendezvous, file, 8)),
      );
      expect(new Set(results.map((r) => r.pid))).toEqual(new Set([worker.pid]));
      expect(new Set(results.map((r) => r.threadId)).size).toBe(2);
    },
  );

  it('weft worker refuses a --pool-size above --concurrency, and a bad --concurrency, with exit 2', () => {
    const bigPool = spawnSync(
      process.execPath,
      [cli, 'worker', '--address', 'redis://127.0.0.1:1', '--concurrency', '2', '--pool-size', '4'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(bigPool.status).toBe(2);
    expect(bigPool.stderr).toContain('--pool-size 4 is larger than --concurrency 2');
    const zero = spawnSync(
      process.execPath,
      [cli, 'worker', '--address', 'redis://127.0.0.1:1', '--concurrency', '0'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(zero.status).toBe(2);
    expect(zero.stderr).toContain('--concurrency must be a positive integer');
  });
});
