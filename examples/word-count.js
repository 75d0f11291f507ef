// weft run examples/word-count.js [--executor threads|processes|...]
// The classic map-reduce, as a pipeline of futures: 100 tasks each write a text file of about
// 1 MB into a temporary folder; each file's word count starts as soon as that file is written
// (its argument is the writing task's future); a last task adds the counts up. The folder is
// removed afterwards. The texts come from fixed seeds, so every executor prints the same result.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countFileWords, topWords, writeText } from './tasks.js';

const files = 100;
const wordsPerFile = 150_000;

export default async function wordCount(executor) {
  const dir = await mkdtemp(join(tmpdir(), 'weft-word-count-'));
  try {
    const started = performance.now();
    const paths = Array.from({ length: files }, (_, i) => join(dir, `text-${i}.txt`));
    const seeds = paths.map((_, i) => i + 1);
    const written = executor.map(writeText, paths, seeds, Array(files).fill(wordsPerFile));
    const counts = executor.map(countFileWords, written);
    const top = await executor.submit(topWords, counts, 5);
    const seconds = (performance.now() - started) / 1000;
    const list = top.map(([word, n]) => `${word} ${n.toLocaleString('en-US')}`).join(', ');
    return `${files} files written and counted in ${seconds.toFixed(2)} s; most frequent: ${list}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
