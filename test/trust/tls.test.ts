/**
 * TLS against a real redis-server that speaks only TLS and requires client certificates, with a
 * CA made by openssl at test time: the conformance suite runs there (mutual TLS and a secret);
 * a client without a certificate, with a wrong CA or with no CA fails start() within 15 s saying
 * TLS verification failed and what to pass; PEM text, WEFT_TLS_* and the worker's --tls-* flags.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  DistributedExecutor,
  startClusterWorker,
  type ClusterWorkerHandle,
} from 'weftjs';
import { conformance } from '../conformance/suite.js';
import {
  makePki,
  startRedisCluster,
  startTlsRedis,
  type SecureRedis,
  type TestPki,
} from '../helpers/secure-redis.js';
import { double } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const secret = 'tls-test-secret';

let pki: TestPki;
let server: SecureRedis;
const workers: ClusterWorkerHandle[] = [];

function mutual(): { ca: string; cert: string; key: string } {
  return { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
}

beforeAll(async () => {
  pki = makePki();
  server = await startTlsRedis(pki, true);
  for (const [prefix, name] of [
    ['tls', 'tls-1'],
    ['tls', 'tls-2'],
    ['tls-single', 'tls-single'],
    ['tls-misc', 'tls-misc'],
  ] as const)
    workers.push(
      await startClusterWorker({
        address: server.address,
        prefix,
        name,
        tls: mutual(),
        secret: [secret],
      }),
    );
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await server?.stop();
}, 60_000);

conformance(
  'DistributedExecutor (mutual TLS, signed)',
  () => new DistributedExecutor({ address: server.address, prefix: 'tls', tls: mutual(), secret }),
  {
    inline: false,
    immediate: false,
    parallel: true,
    single: () =>
      new DistributedExecutor({
        address: server.address,
        prefix: 'tls-single',
        tls: mutual(),
        secret,
      }),
  },
);

/** start() rejects within 15 s (plus slack for a busy machine); returns the error. */
async function startFails(executor: DistributedExecutor): Promise<Error> {
  const before = Date.now();
  const error = await executor.start().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!error) {
    await executor.shutdown();
    throw new Error('start() succeeded');
  }
  expect(Date.now() - before).toBeLessThan(16_000);
  return error;
}

describe('DistributedExecutor over TLS', () => {
  it('refuses a client without a certificate when the server requires one', async () => {
    const error = await startFails(
      new DistributedExecutor({ address: server.address, tls: { ca: pki.ca } }),
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toMatch(/TLS verification failed/);
    expect(error.message).toMatch(/tls: \{ cert, key \}.*WEFT_TLS_CERT.*--tls-cert/);
  });

  it('fails start() when the server certificate does not verify (wrong CA, or none)', async () => {
    const wrong = await startFails(
      new DistributedExecutor({
        address: server.address,
        tls: { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey },
      }),
    );
    expect(wrong).toBeInstanceOf(ConfigurationError);
    expect(wrong.message).toMatch(/TLS verification failed/);
    expect(wrong.message).toMatch(/tls: \{ ca \}.*WEFT_TLS_CA.*--tls-ca/);
    const none = await startFails(
      new DistributedExecutor({
        address: server.address,
        tls: { cert: pki.clientCert, key: pki.clientKey },
      }),
    );
    expect(none.message).toMatch(/TLS verification failed/);
  });

  it('takes PEM text as well as paths, and WEFT_TLS_* from the environment', async () => {
    const pem = {
      ca: readFileSync(pki.ca, 'utf8'),
      cert: readFileSync(pki.clientCert, 'utf8'),
      key: readFileSync(pki.clientKey, 'utf8'),
    };
    await new DistributedExecutor({
      address: server.address,
      prefix: 'tls-misc',
      tls: pem,
      secret,
    }).start(async (ex) => {
      expect(await ex.submit(double, 4)).toBe(8);
    });
    const saved = { ...process.env };
    process.env.WEFT_TLS_CA = pki.ca;
    process.env.WEFT_TLS_CERT = pki.clientCert;
    process.env.WEFT_TLS_KEY = pki.clientKey;
    try {
      await new DistributedExecutor({
        address: server.address,
        prefix: 'tls-misc',
        secret,
      }).start(async (ex) => {
        expect(await ex.submit(double, 5)).toBe(10);
      });
    } finally {
      for (const k of ['WEFT_TLS_CA', 'WEFT_TLS_CERT', 'WEFT_TLS_KEY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('rejects TLS settings that cannot work, at construction', () => {
    expect(
      () =>
        new DistributedExecutor({ address: server.address, tls: { ca: '/nonexistent/ca.pem' } }),
    ).toThrow(/could not be read/);
    expect(
      () => new DistributedExecutor({ address: server.address, tls: { cert: pki.clientCert } }),
    ).toThrow(/cert without a key/);
    expect(
      () => new DistributedExecutor({ address: 'redis://127.0.0.1:6379', tls: { ca: pki.ca } }),
    ).toThrow(/rediss:\/\//);
  });

  it(
    'weft worker joins with --tls-ca/--tls-cert/--tls-key, and exits saying why with a wrong CA',
    { timeout: 60_000 },
    async () => {
      const args = (ca: string): string[] => [
        cli,
        'worker',
        '--address',
        server.address,
        '--prefix',
        'tls-cli',
        '--tls-ca',
        ca,
        '--tls-cert',
        pki.clientCert,
        '--tls-key',
        pki.clientKey,
      ];
      const bad = spawn(process.execPath, args(pki.otherCa), { stdio: ['ignore', 'pipe', 'pipe'] });
      let badOut = '';
      bad.stderr.on('data', (d: Buffer) => (badOut += d.toString()));
      const code = await new Promise<number | null>((resolve) => bad.once('exit', resolve));
      expect(code).not.toBe(0);
      expect(badOut).toMatch(/TLS verification failed/);
      const worker = spawn(process.execPath, args(pki.ca), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, WEFT_SECRET: secret },
      });
      try {
        let out = '';
        worker.stderr.on('data', (d: Buffer) => (out += d.toString()));
        await expect.poll(() => out, { timeout: 20_000 }).toMatch(/joined rediss:/);
        await new DistributedExecutor({
          address: server.address,
          prefix: 'tls-cli',
          tls: mutual(),
          secret,
        }).start(async (ex) => {
          expect(await ex.submit(double, 21)).toBe(42);
        });
      } finally {
        worker.kill('SIGKILL');
      }
    },
  );
});

describe('DistributedExecutor on a Redis Cluster over TLS (rediss+cluster://)', () => {
  it(
    'runs signed tasks and passes stored values worker to worker, leaving nothing at shutdown',
    { timeout: 90_000 },
    async () => {
      const tlsCluster = await startRedisCluster(pki);
      try {
        expect(tlsCluster.address).toMatch(/^rediss\+cluster:\/\//);
        const worker = await startClusterWorker({
          address: tlsCluster.address,
          name: 'tls-cluster-1',
          tls: { ca: pki.ca },
          secret: [secret],
        });
        try {
          const ex = await new DistributedExecutor({
            address: tlsCluster.address,
            tls: { ca: pki.ca },
            secret,
          }).start();
          expect(await ex.wait(ex.map(double, [1, 2, 3]))).toEqual([2, 4, 6]);
          const big = ex.submit((n: number) => new Float64Array(n).fill(1), 20_000);
          expect(await ex.submit((a: Float64Array) => a.length, big)).toBe(20_000);
          // The 160 KB result stayed in the cluster, outside the prefix's hash tag.
          expect(tlsCluster.scan('weft:val:*')).toHaveLength(1);
          await ex.shutdown();
          expect(tlsCluster.scan('weft:val:*')).toEqual([]);
        } finally {
          await worker.close();
        }
      } finally {
        await tlsCluster.stop();
      }
    },
  );
});
