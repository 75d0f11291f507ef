// node examples/compare.js [job.js]: one job (default: the Monte-Carlo demo) on every local
// executor, each started and shut down in turn, timed from start() to the end of shutdown().
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalExecutor, LocalPoolExecutor } from 'weftjs';

const file = process.argv[2];
const { default: job } = file
  ? await import(pathToFileURL(resolve(file)).href)
  : await import('./monte-carlo.js');

const executors = [
  ['local', () => new LocalExecutor()],
  ['synchronous', () => new LocalPoolExecutor({ scheduler: 'synchronous' })],
  ['threads', () => new LocalPoolExecutor({ scheduler: 'threads' })],
  ['processes', () => new LocalPoolExecutor({ scheduler: 'processes' })],
];

let baseline;
for (const [name, make] of executors) {
  const started = performance.now();
  const result = await make().start(job);
  const seconds = (performance.now() - started) / 1000;
  baseline ??= seconds;
  const speedup = `${(baseline / seconds).toFixed(2)}x`;
  console.log(
    `${name.padEnd(12)} ${seconds.toFixed(2).padStart(6)} s ${speedup.padStart(6)}   ${result}`,
  );
}
