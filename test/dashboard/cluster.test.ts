/**
 * `weft dashboard --address` watching a running cluster: workers and task events arrive through
 * Redis from other processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DistributedExecutor, type Future } from 'weftjs';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { checksum, resize, upload } from './fixtures.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const children: ChildProcess[] = [];
let redis: TestRedis | undefined;
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await redis?.stop(true);
});

function start(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: join(fileURLToPath(new URL('../..', import.meta.url))),
  });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { child, stderr: () => err };
}

async function until<T>(
  get: () => T | undefined | Promise<T | undefined>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the dashboard's /api/explain answers for `key`. */
async function explainOn(
  url: string,
  key: string,
): Promise<{ status: number; body: { status?: string; text?: string; message?: string } }> {
  const response = await fetch(`${url}api/explain?key=${encodeURIComponent(key)}`);
  return { status: response.status, body: (await response.json()) as { text?: string } };
}

describe('cluster dashboard', () => {
  it(
    'shows the workers and the tasks of a distributed run with two workers, and explains them',
    { timeout: 90_000 },
    async () => {
      redis = await startRedis();
      const a = start(['worker', '--address', redis.address, '--name', 'alpha']);
      const b = start(['worker', '--address', redis.address, '--name', 'beta']);
      await until(
        () => a.stderr().includes('joined') && b.stderr().includes('joined'),
        30_000,
        'the workers',
      );
      const dash = start(['dashboard', '--address', redis.address]);
      const url = await until(
        () => /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(dash.stderr())?.[1],
        30_000,
        'the dashboard URL',
      );
      // Let the dashboard announce itself (the watch key) before the run.
      await new Promise((r) => setTimeout(r, 2_500));
      const ex = await new DistributedExecutor({ address: redis.address }).start();
      let failed: Future<never> | undefined;
      try {
        await ex.wait(
          ex.map(
            checksum,
            Array.from({ length: 40 }, (_, i) => i),
            Array(40).fill(1),
          ),
        );
        // A click on a running task asks its client, as weft explain does.
        const slow = ex.submit(resize, 3_000);
        const live = await until(
          async () => {
            const answer = await explainOn(url, slow.key);
            return answer.status === 200 && answer.body.status === 'running' ? answer : undefined;
          },
          30_000,
          'the running task to be explained',
        );
        expect(live.body.text).toContain(`(key ${slow.key})`);
        await slow;
        failed = ex.submit(upload, 'seen on the cluster dashboard');
        await failed.then(
          () => undefined,
          () => undefined,
        );
      } finally {
        await ex.shutdown();
      }
      // After its client is gone, a failed task is explained from what the client stored.
      const gone = await until(
        async () => {
          const answer = await explainOn(url, failed.key);
          return answer.status === 200 ? answer : undefined;
        },
        30_000,
        'the failed task to be explained',
      );
      expect(gone.body.status).toBe('error');
      expect(gone.body.text).toContain('seen on the cluster dashboard');
      const unknown = await explainOn(url, 'nothing-00000000');
      expect(unknown.status).toBe(404);
      const state = await until(
        async () => {
          const s = (await (await fetch(`${url}api/state`)).json()) as {
            totals: { finished: number; failed: number };
            workers: { name: string; finished: number }[];
            errors: { error: { message: string } }[];
          };
          return s.totals.finished >= 40 && s.totals.failed >= 1 ? s : undefined;
        },
        30_000,
        'the run to reach the dashboard',
      );
      expect(state.workers.map((w) => w.name).sort()).toEqual(['alpha', 'beta']);
      expect(state.errors[0]!.error.message).toBe('seen on the cluster dashboard');
    },
  );
});
