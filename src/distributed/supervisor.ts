/**
 * A tiny parent for a process that cannot watch its own parent (redis-server): it runs the
 * command and kills it as soon as the weft process that started the supervisor goes away, even
 * when that process was SIGKILLed (the IPC channel closes). Run with fork(); argv: command, args.
 */
import { spawn } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
if (!command || !process.send) {
  process.stderr.write('weft supervisor: run me with fork(supervisor.js, [command, ...args])\n');
  process.exit(2);
}
const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
child.stderr.on('data', (d: Buffer) => {
  stderr = (stderr + d.toString()).slice(-2000);
});
const stop = (): void => {
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), 2000).unref();
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
child.on('error', (error) => {
  process.send?.({ t: 'error', message: error.message });
  process.exit(1);
});
child.on('spawn', () => process.send?.({ t: 'spawned', pid: child.pid }));
child.on('exit', (code, signal) => {
  if (process.connected) process.send?.({ t: 'exit', code, signal, stderr });
  process.exit(0);
});
