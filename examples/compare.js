// node examples/compare.js: the Monte-Carlo job on every local executor, timed.
import { LocalExecutor, LocalPoolExecutor } from 'weft';
import monteCarlo from './monte-carlo.js';

const executors = [
  ['local', () => new LocalExecutor()],
  ['synchronous', () => new LocalPoolExecutor({ scheduler: 'synchronous' })],
  ['threads', () => new LocalPoolExecutor({ scheduler: 'threads' })],
  ['processes', () => new LocalPoolExecutor({ scheduler: 'processes' })],
];

for (const [name, make] of executors) {
  const started = performance.now();
  const result = await make().start(monteCarlo);
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(`${name.padEnd(12)} ${seconds.padStart(6)} s   ${result}`);
}
