/**
 * Running a child process without blocking the test's event loop (spawnSync would stall the
 * timers a hung test needs to fail): its output, exit status and time, with a deadline.
 */
import { spawn } from 'node:child_process';

export interface Finished {
  /** Exit code; null when a signal (the deadline's SIGKILL included) ended it. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** The child is SIGKILLed after this many milliseconds (default 60,000). */
  timeoutMs?: number;
}

/** Runs `command args` to its end and resolves with what it printed; never rejects on a failure exit. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<Finished> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (status, signal) =>
      resolve({ status, signal, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

/** Runs `node args` with the Node that runs the tests. */
export function node(args: string[], options?: RunOptions): Promise<Finished> {
  return run(process.execPath, args, options);
}
