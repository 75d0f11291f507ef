// piscina / tinypool anchor worker for W5 (I/O-bound): one export per workload.
import { get, wait, waitAndMeasure } from '../io-tasks.js';
export function sleep(ms) {
  return wait(ms);
}
export function fetchOne(url) {
  return get(url);
}
export function mem(ms) {
  return waitAndMeasure(ms);
}
export default sleep;
