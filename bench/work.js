// The CPU work every runner does for W3: a fixed number of loop iterations, so each task is the
// same amount of work wherever it runs (a time-based loop would hide a lack of parallelism: two
// tasks sharing one core would still each end after their wall-clock time).
export function spin(iterations) {
  let x = 0;
  for (let i = 0; i < iterations; i++) x += Math.sqrt(x + i);
  return x;
}

/**
 * Iterations of `spin` that take about `ms` on this thread once it is optimized. The fastest of
 * several timings is the one least disturbed by whatever else the machine does.
 */
export function calibrate(ms) {
  for (let iterations = 100_000; ; iterations *= 2) {
    let fastest = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      spin(iterations);
      fastest = Math.min(fastest, performance.now() - started);
    }
    if (fastest >= 50) return Math.round((iterations * ms) / fastest);
  }
}
