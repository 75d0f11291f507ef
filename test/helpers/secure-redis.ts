/**
 * Real redis-servers for the trust tests, on free loopback ports: one speaking only TLS (with a
 * CA made by openssl at test time), and a 3-master Redis Cluster. Fail (never skip) with a clear
 * message when openssl, redis-server or redis-cli is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, removeDir } from './redis.js';

function need(command: string, args: string[], install: string): void {
  const check = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (check.error || check.status !== 0)
    throw new Error(
      `These tests need ${command} on PATH and it is not there. Install it (Debian/Ubuntu: sudo apt-get install ${install}); .ci/run does this in CI.`,
    );
}

function run(command: string, args: string[], cwd: string): string {
  // Bounded: `redis-cli --cluster create` waits forever for nodes that cannot meet.
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error || result.status !== 0)
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.error?.message}`,
    );
  return result.stdout;
}

/** File paths of a test PKI: a CA, a server certificate for 127.0.0.1, a client certificate. */
export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Another CA, which signed nothing the server uses. */
  otherCa: string;
}

/** Makes a CA and certificates with openssl (EC P-256 keys: milliseconds). */
export function makePki(): TestPki {
  need('openssl', ['version'], 'openssl');
  const dir = mkdtempSync(join(tmpdir(), 'weft-pki-'));
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, subject: string): void => {
    run(
      'openssl',
      [
        'req',
        '-x509',
        ...key,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-subj',
        subject,
      ],
      dir,
    );
  };
  const issue = (name: string, cn: string, ext: string): void => {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    run(
      'openssl',
      [
        'req',
        '-new',
        ...key,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${cn}`,
      ],
      dir,
    );
    run(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    );
  };
  ca('ca', '/CN=weft test CA');
  ca('other', '/CN=another CA');
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  issue('client', 'weft-client', 'extendedKeyUsage=clientAuth');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    otherCa: join(dir, 'other.crt'),
  };
}

export interface SecureRedis {
  /** rediss:// (TLS) or redis+cluster:// address. */
  readonly address: string;
  readonly ports: number[];
  /** Runs a redis-cli command against the (first) server, as its default user. */
  cli(...args: string[]): string;
  /** Keys matching `pattern` on every node (a cluster's masters; the one server otherwise). */
  scan(pattern: string): string[];
  stop(): Promise<void>;
}

/** A redis-server listening only on TLS `port`, with the server certificate of `pki`. */
function tlsServerArgs(pki: TestPki, port: number, authClients: boolean): string[] {
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    pki.serverCert,
    '--tls-key-file',
    pki.serverKey,
    '--tls-ca-cert-file',
    pki.ca,
    '--tls-auth-clients',
    authClients ? 'yes' : 'no',
  ];
}

function tlsCliArgs(pki: TestPki): string[] {
  return ['--tls', '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey];
}

async function launch(
  args: string[],
  ping: () => boolean,
  what: string,
): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!ping()) {
    if (child.exitCode !== null)
      throw new Error(`${what} exited at once (${child.exitCode}): ${stderr.slice(-500)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not answer PING within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A redis-server that speaks only TLS, with certificates from `pki`; `authClients`: require a client certificate. */
export async function startTlsRedis(pki: TestPki, authClients: boolean): Promise<SecureRedis> {
  need('redis-server', ['--version'], 'redis-server');
  need('redis-cli', ['--version'], 'redis-tools');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'weft-redis-tls-'));
  const cli = (...cmd: string[]): string =>
    spawnSync('redis-cli', ['-p', String(port), ...tlsCliArgs(pki), ...cmd], {
      encoding: 'utf8',
      timeout: 10_000,
    }).stdout;
  const server = await launch(
    [
      ...tlsServerArgs(pki, port, authClients),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    () => cli('ping').trim() === 'PONG',
    `redis-server with TLS on port ${port}`,
  );
  return {
    address: `rediss://127.0.0.1:${port}`,
    ports: [port],
    cli,
    scan: (pattern: string) => cli('--scan', '--pattern', pattern).split('\n').filter(Boolean),
    async stop() {
      await server.stop();
      removeDir(dir);
    },
  };
}

/**
 * A Redis Cluster of three masters (no replicas) on free loopback ports; with `pki`, every node
 * speaks only TLS, the cluster bus included (a `rediss+cluster://` address).
 */
export async function startRedisCluster(pki?: TestPki): Promise<SecureRedis> {
  need('redis-server', ['--version'], 'redis-server');
  need('redis-cli', ['--version'], 'redis-tools');
  const ports = [await freePort(), await freePort(), await freePort()];
  // Each node's cluster bus gets its own free port: the default (port + 10000) is out of range
  // for ports above 55535, where the kernel's ephemeral range reaches, and may be taken.
  const busPorts = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'weft-redis-cluster-'));
  const tlsArgs = pki ? tlsCliArgs(pki) : [];
  const cli = (port: number, ...cmd: string[]): string =>
    spawnSync('redis-cli', ['-p', String(port), ...tlsArgs, ...cmd], {
      encoding: 'utf8',
      timeout: 10_000,
    }).stdout;
  const listen = (port: number): string[] =>
    pki ? [...tlsServerArgs(pki, port, false), '--tls-cluster', 'yes'] : ['--port', String(port)];
  const servers: { stop: () => Promise<void> }[] = [];
  try {
    for (const [i, port] of ports.entries()) {
      servers.push(
        await launch(
          [
            ...listen(port),
            '--bind',
            '127.0.0.1',
            '--dir',
            dir,
            '--save',
            '',
            '--appendonly',
            'no',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-port',
            String(busPorts[i]),
            '--cluster-node-timeout',
            '5000',
          ],
          () => cli(port, 'ping').trim() === 'PONG',
          `redis-server --cluster-enabled on port ${port}`,
        ),
      );
    }
    run(
      'redis-cli',
      [
        ...tlsArgs,
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      dir,
    );
    const deadline = Date.now() + 20_000;
    while (!ports.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok'))) {
      if (Date.now() > deadline)
        throw new Error('the Redis Cluster did not reach state ok in 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    removeDir(dir);
    throw error;
  }
  return {
    address: `${pki ? 'rediss' : 'redis'}+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    cli: (...cmd: string[]) => cli(ports[0]!, '-c', ...cmd),
    scan: (pattern: string) =>
      ports.flatMap((port) =>
        cli(port, '--scan', '--pattern', pattern).split('\n').filter(Boolean),
      ),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      removeDir(dir);
    },
  };
}
