// Tasks for the examples. Defined with task() at the top level, so every executor can run them:
// workers import this module and find each task by name.
import { readFile, writeFile } from 'node:fs/promises';
import { task } from 'weftjs';

/**
 * Throws `samples` random darts at the unit square and counts those inside the quarter circle.
 * A small deterministic generator (mulberry32) keeps each chunk reproducible from its seed.
 */
export const countHits = task(function countHits(seed, samples) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let hits = 0;
  for (let i = 0; i < samples; i++) {
    const x = random();
    const y = random();
    if (x * x + y * y <= 1) hits++;
  }
  return hits;
});

/** Adds up the chunks' hits into an estimate of π. */
export const estimatePi = task(function estimatePi(hits, samplesPerChunk) {
  const total = hits.reduce((a, b) => a + b, 0);
  return (4 * total) / (hits.length * samplesPerChunk);
});

const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'we', 'zu', 'an', 'el'];

/**
 * Writes `words` pseudo-random words of one to three syllables to `path` (the same text for the
 * same `seed`) and returns the path.
 */
export const writeText = task(async function writeText(path, seed, words) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const text = new Array(words);
  for (let i = 0; i < words; i++) {
    // Skewed draws, so some words are much more frequent than others, as in real text.
    const length = 1 + Math.floor(next() * next() * 3);
    let word = '';
    for (let s = 0; s < length; s++) word += syllables[Math.floor(next() * next() * 12)];
    text[i] = i % 12 === 11 ? `${word}.\n` : word;
  }
  await writeFile(path, text.join(' '));
  return path;
});

/**
 * Counts the words of one text file. The worker reads the file itself, so only the path goes out
 * and only the counts come back.
 */
export const countFileWords = task(async function countFileWords(path) {
  const counts = new Map();
  for (const word of (await readFile(path, 'utf8')).toLowerCase().split(/[^a-z]+/)) {
    if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
});

/** Adds up per-file counts and returns the `top` most frequent words, most frequent first. */
export const topWords = task(function topWords(perFile, top) {
  const total = new Map();
  for (const counts of perFile) {
    for (const [word, n] of counts) total.set(word, (total.get(word) ?? 0) + n);
  }
  return [...total].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
});
