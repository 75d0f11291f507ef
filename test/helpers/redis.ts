/**
 * A private redis-server for a test, on a free loopback port. Fails (never skips) with a clear
 * message when redis-server cannot be started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  readonly address: string;
  readonly port: number;
  /** Stops the server (SIGTERM; SIGKILL with `hard`). */
  stop(hard?: boolean): Promise<void>;
  /** SIGKILLs the server, keeping its data directory (for `restart()`). */
  crash(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>;
  /** Runs a redis-cli command against it and returns its output. */
  cli(...args: string[]): string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis(
  options: { appendonly?: boolean; password?: string } = {},
): Promise<TestRedis> {
  const check = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (check.error || check.status !== 0) {
    throw new Error(
      'These tests need redis-server on PATH and it is not there. Install it (Debian/Ubuntu: sudo apt-get install redis-server); .ci/run does this in CI.',
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'weft-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendonly ? 'yes' : 'no',
  ];
  if (options.appendonly) args.push('--appendfsync', 'always');
  if (options.password) args.push('--requirepass', options.password);
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const ping = spawnSync(
        'redis-cli',
        [
          '-p',
          String(port),
          ...(options.password ? ['-a', options.password, '--no-auth-warning'] : []),
          'ping',
        ],
        { encoding: 'utf8', timeout: 2_000 },
      );
      if (ping.stdout?.trim() === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
  };
  const halt = async (hard: boolean): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await launch();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    address: `redis://${auth}127.0.0.1:${port}`,
    port,
    async stop(hard = false) {
      await halt(hard);
      removeDir(dir);
    },
    async crash() {
      await halt(true);
    },
    async restart() {
      await halt(false);
      await launch();
    },
    cli(...cmd: string[]) {
      return spawnSync(
        'redis-cli',
        [
          '-p',
          String(port),
          ...(options.password ? ['-a', options.password, '--no-auth-warning'] : []),
          ...cmd,
        ],
        { encoding: 'utf8', timeout: 10_000 },
      ).stdout;
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
