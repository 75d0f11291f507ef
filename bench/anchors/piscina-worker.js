// piscina / tinypool anchor worker: one export per workload.
import { spin } from '../work.js';
export function noop() {
  return null;
}
export function cpu(iterations) {
  return spin(iterations);
}
export function bytes(data) {
  return data.length;
}
export default noop;
