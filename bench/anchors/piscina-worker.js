// piscina / tinypool anchor worker: one export per workload.
import { cpuWork } from '../work.js';
export function noop() {
  return null;
}
export function cpu(ms) {
  return cpuWork(ms);
}
export function bytes(data) {
  return data.length;
}
export default noop;
