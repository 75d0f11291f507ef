// The CPU work every runner does: a busy loop of about `ms` milliseconds.
export function cpuWork(ms) {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
}
