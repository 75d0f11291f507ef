/**
 * Redis ACL users against a real redis-server: a client and a worker logged in with exactly the
 * rules README gives (read from README.md itself) run tasks; a worker or client with less fails
 * with an error naming the missing permission (NOPERM); a wrong password fails start() at once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  startClusterWorker,
  type ClusterWorkerHandle,
} from 'weftjs';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { double } from './fixtures.js';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The README's `$R ACL SETUSER <user> ...` line (R is redis-cli) for `user`, as arguments. */
function readmeRule(user: string): string[] {
  const line = new RegExp(`^\\$R (ACL SETUSER ${user} .*)$`, 'm').exec(readme)?.[1];
  if (!line) throw new Error(`README.md has no "$R ACL SETUSER ${user} ..." line`);
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

let server: TestRedis;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop(true);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Creates `user` with the README's rules for it, minus the rules in `drop`; returns its address. */
function user(name: string, readmeUser: string, drop: string[] = []): string {
  const rule = readmeRule(readmeUser)
    .map((part, i) => (i === 2 ? name : part))
    .filter((part) => !drop.includes(part));
  const password = rule.find((part) => part.startsWith('>'))!.slice(1);
  const reply = server.cli(...rule).trim();
  if (reply !== 'OK') throw new Error(`ACL SETUSER ${name} failed: ${reply}`);
  return `redis://${name}:${encodeURIComponent(password)}@127.0.0.1:${server.port}`;
}

async function worker(address: string, name: string): Promise<ClusterWorkerHandle> {
  const handle = await startClusterWorker({ address, name, secret: ['acl-secret'] });
  cleanups.push(() => handle.close());
  return handle;
}

describe('Redis ACL users', () => {
  it("runs tasks as a client and a worker logged in with README's rules", async () => {
    await worker(user('weft-worker', 'weft-worker'), 'acl-worker');
    const ex = await new DistributedExecutor({
      address: user('weft-client', 'weft-client'),
      secret: 'acl-secret',
    }).start();
    cleanups.push(() => ex.shutdown({ cancelPending: true }));
    expect(await ex.submit(double, 21)).toBe(42);
    // A payload big enough for its own key, and a map in chunks.
    const big = new Float64Array(10_000).fill(1);
    expect(await ex.submit((a: Float64Array) => a.length, big)).toBe(10_000);
    expect(await ex.wait(ex.map(double, [1, 2, 3, 4, 5]))).toEqual([2, 4, 6, 8, 10]);
  });

  it('fails a worker that lacks a permission, naming it', async () => {
    const noInfo = await startClusterWorker({
      address: user('worker-no-info', 'weft-worker', ['+info']),
      name: 'no-info',
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(noInfo).toBeInstanceOf(ConfigurationError);
    expect(noInfo!.message).toMatch(/NOPERM.*'info'/);
    const noChannel = await startClusterWorker({
      address: user('worker-no-channel', 'weft-worker', ['&weft:control']),
      name: 'no-channel',
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(noChannel).toBeInstanceOf(ConfigurationError);
    expect(noChannel!.message).toMatch(/NOPERM.*channel/);
  });

  it('fails the tasks of a client that lacks a permission, naming it', async () => {
    await worker(user('weft-worker', 'weft-worker'), 'acl-worker-2');
    const ex = await new DistributedExecutor({
      address: user('client-no-scripts', 'weft-client', ['+@scripting']),
      secret: 'acl-secret',
    }).start();
    cleanups.push(() => ex.shutdown({ cancelPending: true }));
    const error = await ex.submit(double, 1).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error!.message).toMatch(/NOPERM.*'(evalsha|eval|script\|load)'/);
  });

  it('fails start() at once when the password is wrong', async () => {
    user('weft-client', 'weft-client');
    const before = Date.now();
    const error = await new DistributedExecutor({
      address: `redis://weft-client:wrong@127.0.0.1:${server.port}`,
    })
      .start()
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error!.message).toMatch(/refused the login/);
    expect(error!.message).not.toContain('wrong');
    expect(Date.now() - before).toBeLessThan(10_000);
  });
});
