// Tasks for the examples. Defined with task() at the top level, so every executor can run them:
// workers import this module and find each task by name.
import { task } from 'weft';

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
