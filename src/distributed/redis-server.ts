/**
 * A private redis-server for a local cluster: found on PATH, on a free loopback port, with
 * persistence off, stopped at shutdown and by its supervisor if this process dies.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisAllocatorEnv } from './allocator.js';
import { ConfigurationError } from '../core/errors.js';

/** Finds `redis-server` on PATH (or `WEFT_REDIS_SERVER`). */
export function findRedisServer(): string {
  const explicit = process.env.WEFT_REDIS_SERVER;
  if (explicit) return explicit;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new ConfigurationError(
    'DistributedExecutor without an address starts a local cluster, which needs redis-server, but none was found on PATH. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), set WEFT_REDIS_SERVER to its path, or pass address: "redis://host:6379" to use a running cluster.',
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerHandle {
  readonly address: string;
  readonly port: number;
  /** Says how, when redis-server exits without `stop()` (killed, crashed); at most once each. */
  onExit(listener: (how: string) => void): void;
  stop(): Promise<void>;
}

const supervisorPath = fileURLToPath(new URL('./supervisor.js', import.meta.url));

/** Starts redis-server on a free port; resolves once it was spawned (callers PING it). */
export async function startRedisServer(extraArgs: string[] = []): Promise<RedisServerHandle> {
  const binary = findRedisServer();
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'yes',
    ...extraArgs,
  ];
  const supervisor: ChildProcess = fork(supervisorPath, [binary, ...args], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
    env: { ...process.env, ...redisAllocatorEnv() },
  });
  let exitInfo = '';
  let stopping = false;
  const exitListeners: ((how: string) => void)[] = [];
  let exitedHow: string | undefined;
  const died = (how: string): void => {
    if (stopping || exitedHow !== undefined) return;
    exitedHow = how;
    for (const listener of exitListeners) listener(how);
  };
  const exited = new Promise<void>((resolve) => supervisor.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    supervisor.on(
      'message',
      (m: { t: string; message?: string; code?: number; stderr?: string }) => {
        if (m.t === 'spawned') resolve();
        else if (m.t === 'error')
          reject(
            new ConfigurationError(`redis-server (${binary}) could not be started: ${m.message}.`),
          );
        else if (m.t === 'exit') {
          exitInfo = m.stderr ?? '';
          reject(
            new ConfigurationError(
              `redis-server exited at once (code ${m.code}): ${exitInfo.trim().slice(-300)}`,
            ),
          );
        }
      },
    );
    supervisor.once('exit', () =>
      reject(
        new ConfigurationError('The redis-server supervisor exited before redis-server started.'),
      ),
    );
  });
  await waitForPort(port, 10_000);
  supervisor.on('message', (m: { t: string; code?: number | null; signal?: string | null }) => {
    if (m.t === 'exit')
      died(m.signal ? `was killed (${m.signal})` : `exited (code ${m.code ?? 'unknown'})`);
  });
  supervisor.once('exit', () => died('exited with its supervisor'));
  supervisor.unref();
  (supervisor.channel as { unref?: () => void } | undefined)?.unref?.();
  return {
    address: `redis://127.0.0.1:${port}`,
    port,
    onExit: (listener) => {
      exitListeners.push(listener);
      if (exitedHow !== undefined) listener(exitedHow);
    },
    stop: async () => {
      stopping = true;
      if (supervisor.exitCode !== null || supervisor.signalCode !== null) return;
      supervisor.ref();
      supervisor.kill('SIGTERM');
      const timer = setTimeout(() => supervisor.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once something accepts TCP connections on the loopback port. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) {
      throw new ConfigurationError(
        `redis-server did not accept connections on 127.0.0.1:${port} within ${timeoutMs / 1000} s.`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
