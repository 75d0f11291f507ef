// weft run examples/monte-carlo.js [--executor threads|processes|...]
// Estimates π with a map-reduce: 64 chunks of CPU work mapped over the executor, then reduced.
import { countHits, estimatePi } from './tasks.js';

const chunks = 64;
const samplesPerChunk = 4_000_000;

export default async function monteCarlo(executor) {
  const started = performance.now();
  const hits = executor.map(
    countHits,
    Array.from({ length: chunks }, (_, i) => i + 1),
    Array(chunks).fill(samplesPerChunk),
  );
  // The reduce takes the list of futures as its argument: it runs when all of them are done.
  const pi = await executor.submit(estimatePi, hits, samplesPerChunk);
  const seconds = (performance.now() - started) / 1000;
  return `π ≈ ${pi.toFixed(6)} from ${((chunks * samplesPerChunk) / 1e6).toFixed(0)}M samples in ${seconds.toFixed(2)} s`;
}
