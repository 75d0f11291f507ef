/**
 * Signed jobs and results against a real redis-server: a worker with a secret never runs a job
 * that is unsigned, changed in Redis or replayed under another job's identity (a side-effect
 * file proves it), the waiting client gets SignatureError quickly; a forged result is rejected;
 * one-sided and mismatched secrets fail with SignatureError saying so; rotation works; no
 * secret shows in `ps` or in a log line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serialize } from 'node:v8';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DistributedExecutor,
  SignatureError,
  startClusterWorker,
  type ClusterWorkerHandle,
} from 'weftjs';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { double, touch } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');

let server: TestRedis;
let prefixes = 0;
const cleanups: (() => unknown)[] = [];
const dir = mkdtempSync(join(tmpdir(), 'weft-signing-'));

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop(true);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh prefix per test, so that no test sees another's jobs or workers. */
function prefix(): string {
  return `sig${++prefixes}`;
}

function file(name: string): string {
  return join(dir, `${name}-${prefixes}-${Math.random().toString(36).slice(2)}`);
}

async function worker(
  prefix: string,
  secret: string[] | undefined,
  logs: string[] = [],
): Promise<ClusterWorkerHandle> {
  const handle = await startClusterWorker({
    address: server.address,
    prefix,
    name: `w-${prefix}`,
    ...(secret ? { secret } : {}),
    log: (line) => logs.push(line),
  });
  cleanups.push(() => handle.close());
  return handle;
}

async function client(
  prefix: string,
  secret: string | string[] | undefined,
): Promise<DistributedExecutor> {
  const executor = await new DistributedExecutor({
    address: server.address,
    prefix,
    ...(secret ? { secret } : {}),
  }).start();
  cleanups.push(() => executor.shutdown({ cancelPending: true }));
  return executor;
}

function queue(prefix: string): Queue {
  const q = new Queue('tasks', { connection: { host: '127.0.0.1', port: server.port }, prefix });
  cleanups.push(() => q.close());
  return q;
}

/** The one job of a client that no worker has taken yet (the cluster has no worker). */
async function waitingJob(q: Queue): Promise<Job> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const jobs = await q.getJobs(['waiting', 'prioritized']);
    if (jobs.length === 1) return jobs[0]!;
    if (Date.now() > deadline) throw new Error(`expected one waiting job, found ${jobs.length}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Settles `promise` within `ms` or fails the test: "never a hang". */
async function rejection(promise: PromiseLike<unknown>, ms = 15_000): Promise<Error> {
  const outcome = await Promise.race([
    Promise.resolve(promise).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ timeout: true }>((r) => setTimeout(() => r({ timeout: true }), ms)),
  ]);
  if ('timeout' in outcome) throw new Error(`no answer within ${ms} ms`);
  if ('value' in outcome) throw new Error(`expected a rejection, got ${String(outcome.value)}`);
  return outcome.error as Error;
}

describe('signed jobs and results', () => {
  it('runs signed tasks; rotation: the first secret signs, any verifies', async () => {
    const p = prefix();
    await worker(p, ['new-secret-2', 'old-secret-1']);
    const old = await client(p, ['old-secret-1', 'new-secret-2']);
    const target = file('rotation');
    expect(await old.submit(touch, target)).toBe(target);
    expect(await old.wait(old.map(double, [1, 2, 3]))).toEqual([2, 4, 6]);
    const fresh = await client(p, 'new-secret-2');
    expect(await fresh.submit(double, 21)).toBe(42);
    const env = process.env.WEFT_SECRET;
    process.env.WEFT_SECRET = 'old-secret-1, new-secret-2';
    try {
      const fromEnv = await client(p, undefined);
      expect(await fromEnv.submit(double, 5)).toBe(10);
    } finally {
      if (env === undefined) delete process.env.WEFT_SECRET;
      else process.env.WEFT_SECRET = env;
    }
  });

  it('fails with SignatureError when the secrets differ; the task never runs', async () => {
    const p = prefix();
    const logs: string[] = [];
    await worker(p, ['worker-secret-A'], logs);
    const ex = await client(p, 'client-secret-B');
    const target = file('mismatch');
    const error = await rejection(ex.submit(touch, target));
    expect(error).toBeInstanceOf(SignatureError);
    expect((error as SignatureError).code).toBe('SIGNATURE');
    expect(error.message).toMatch(/another secret/);
    expect(existsSync(target)).toBe(false);
    expect(logs.join('\n')).toMatch(/refused job/);
    for (const text of [error.message, error.stack ?? '', ...logs]) {
      expect(text).not.toContain('worker-secret-A');
      expect(text).not.toContain('client-secret-B');
    }
  });

  it('fails with SignatureError when only the client has a secret', async () => {
    const p = prefix();
    await worker(p, undefined);
    const ex = await client(p, 'only-the-client');
    const target = file('client-only');
    const error = await rejection(ex.submit(touch, target));
    expect(error).toBeInstanceOf(SignatureError);
    expect(error.message).toMatch(/no secret/);
    expect(existsSync(target)).toBe(false);
  });

  it('fails with SignatureError when only the worker has a secret', async () => {
    const p = prefix();
    await worker(p, ['only-the-worker']);
    const ex = await client(p, undefined);
    const target = file('worker-only');
    const error = await rejection(ex.submit(touch, target));
    expect(error).toBeInstanceOf(SignatureError);
    expect(error.message).toMatch(/unsigned/);
    expect(existsSync(target)).toBe(false);
  });

  it('never runs a job injected with BullMQ Queue.add; the waiting client gets SignatureError', async () => {
    const p = prefix();
    const ex = await client(p, 's3cret-inject');
    const q = queue(p);
    const honest = file('honest');
    const future = ex.submit(touch, honest);
    const job = await waitingJob(q);
    const data = job.data as { c: string; t: unknown[] };
    await job.remove();
    // An attacker who can write to Redis adds a job of its own for the same client and attempt.
    const evil = file('injected');
    await q.add(
      'touch',
      { c: data.c, t: data.t, p: serialize([[evil]]).toString('base64') },
      { jobId: 'injected-1' },
    );
    const logs: string[] = [];
    await worker(p, ['s3cret-inject'], logs);
    const error = await rejection(future);
    expect(error).toBeInstanceOf(SignatureError);
    expect(error.message).toMatch(/unsigned/);
    expect(existsSync(evil)).toBe(false);
    expect(existsSync(honest)).toBe(false);
    expect(logs.join('\n')).toMatch(/refused job injected-1 .*unsigned/);
  });

  it('never runs a real job whose payload was changed in Redis', async () => {
    const p = prefix();
    const ex = await client(p, 's3cret-tamper');
    const q = queue(p);
    const honest = file('honest');
    const future = ex.submit(touch, honest);
    const job = await waitingJob(q);
    const evil = file('tampered');
    await job.updateData({ ...job.data, p: serialize([[evil]]).toString('base64') });
    await worker(p, ['s3cret-tamper']);
    const error = await rejection(future);
    expect(error).toBeInstanceOf(SignatureError);
    expect(error.message).toMatch(/changed/);
    expect(existsSync(evil)).toBe(false);
    expect(existsSync(honest)).toBe(false);
  });

  it("never runs a signed job replayed under another job's identity", async () => {
    const p = prefix();
    const ex = await client(p, 's3cret-replay');
    const q = queue(p);
    const redis = new Redis(server.port, '127.0.0.1');
    cleanups.push(() => redis.quit());
    const target = file('replayed');
    const future = ex.submit(touch, target);
    const job = await waitingJob(q);
    await job.remove();
    await q.add(job.name, job.data, { jobId: `${String(job.id)}-copy` });
    // The same signed job in another queue (one with resources) is not accepted either.
    const other = new Queue('tasks-GPU=1', {
      connection: { host: '127.0.0.1', port: server.port },
      prefix: p,
    });
    cleanups.push(() => other.close());
    await redis.sadd(`${p}:sigs`, 'GPU=1');
    await other.add(job.name, job.data, { jobId: String(job.id) });
    const logs: string[] = [];
    await startClusterWorker({
      address: server.address,
      prefix: p,
      name: 'gpu-worker',
      resources: { GPU: 1 },
      secret: ['s3cret-replay'],
      log: (line) => logs.push(line),
    }).then((h) => cleanups.push(() => h.close()));
    const error = await rejection(future);
    expect(error).toBeInstanceOf(SignatureError);
    expect(error.message).toMatch(/another job's identity/);
    await expect
      .poll(() => logs.filter((l) => l.includes('refused job')).length, { timeout: 10_000 })
      .toBe(2);
    expect(existsSync(target)).toBe(false);
  });

  it('rejects a forged result, unsigned or signed with another secret', async () => {
    const p = prefix();
    const ex = await client(p, 's3cret-result');
    const q = queue(p);
    const first = ex.submit(double, 1);
    const second = ex.submit(double, 2);
    const redis = new Redis(server.port, '127.0.0.1');
    cleanups.push(() => redis.quit());
    type Data = { c: string; t: { i: number; k: string; n: number }[] };
    let jobs: Job[] = [];
    await expect
      .poll(async () => (jobs = await q.getJobs(['waiting', 'prioritized'])).length)
      .toBe(2);
    const c = (jobs[0]!.data as Data).c;
    const attempts = jobs.flatMap((j) => (j.data as Data).t);
    const byKey = new Map(attempts.map((a) => [a.k, a]));
    const v = serialize(999);
    const a1 = byKey.get(first.key)!;
    await redis.xadd(`${p}:out:${c}`, '*', 'i', String(a1.i), 's', 'ok', 'w', 'forger', 'v', v);
    const a2 = byKey.get(second.key)!;
    const wrong = createHmac('sha256', 'not-the-secret')
      .update(['weft-result-v1', c, String(a2.i), a2.k, String(a2.n), 'ok', 'forger'].join('\0'))
      .update('\0')
      .update(v)
      .digest('base64');
    await redis.xadd(
      `${p}:out:${c}`,
      '*',
      'i',
      String(a2.i),
      's',
      'ok',
      'w',
      'forger',
      'v',
      v,
      'h',
      wrong,
    );
    const e1 = await rejection(first);
    expect(e1).toBeInstanceOf(SignatureError);
    expect(e1.message).toMatch(/unsigned/);
    const e2 = await rejection(second);
    expect(e2).toBeInstanceOf(SignatureError);
    expect(e2.message).toMatch(/not signed with any of this client's secrets/);
  });

  it('keeps secrets out of ps and out of every log line', { timeout: 90_000 }, async () => {
    const p = prefix();
    const secret = `ps-visible-${Math.random().toString(36).slice(2)}`;
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${secret}\n`);
    const worker = spawn(
      process.execPath,
      [cli, 'worker', '--address', server.address, '--prefix', p, '--secret-file', secretFile],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_DEBUG: '1' } },
    );
    cleanups.push(() => worker.kill('SIGKILL'));
    let output = '';
    worker.stdout.on('data', (d: Buffer) => (output += d.toString()));
    worker.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await expect.poll(() => output, { timeout: 20_000 }).toMatch(/joined redis:.*signed jobs only/);
    // A local cluster of child processes with the secret, in a process of its own: its workers
    // get the secret over IPC.
    const script = join(dir, 'local-cluster.mjs');
    writeFileSync(
      script,
      `import { readFileSync } from 'node:fs';
       import { DistributedExecutor } from ${JSON.stringify(join(root, 'dist/index.js'))};
       const secret = readFileSync(${JSON.stringify(secretFile)}, 'utf8').trim();
       const ex = await new DistributedExecutor({ workers: 2, localProcesses: true, secret, debug: true }).start();
       const double = (n) => n * 2;
       process.stdout.write('result ' + (await ex.submit(double, 21)) + '\\n');
       process.stdin.once('data', async () => { await ex.shutdown(); process.stdout.write('done\\n'); });`,
    );
    const local = spawn(process.execPath, [script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_DEBUG: '1' },
    });
    cleanups.push(() => local.kill('SIGKILL'));
    let localOutput = '';
    local.stdout.on('data', (d: Buffer) => (localOutput += d.toString()));
    local.stderr.on('data', (d: Buffer) => (localOutput += d.toString()));
    await expect.poll(() => localOutput, { timeout: 30_000 }).toMatch(/result 42/);
    // A signed task through the CLI worker, and a refused one (wrong secret) for its log.
    const ex = await client(p, secret);
    expect(await ex.submit(double, 4)).toBe(8);
    const wrong = await client(p, 'wrong-secret');
    await rejection(wrong.submit(double, 4));
    await expect.poll(() => output, { timeout: 10_000 }).toMatch(/refused job/);
    const ps = spawnSync('ps', ['-eo', 'pid,args', 'ww'], { encoding: 'utf8' });
    if (ps.error) throw new Error(`ps is needed for this test (procps): ${ps.error.message}`);
    expect(ps.stdout).toContain('--secret-file');
    expect(ps.stdout).not.toContain(secret);
    local.stdin.write('\n');
    await expect.poll(() => localOutput, { timeout: 30_000 }).toMatch(/done/);
    expect(localOutput).toMatch(/local cluster/);
    expect(output).not.toContain(secret);
    expect(localOutput).not.toContain(secret);
  });
});
