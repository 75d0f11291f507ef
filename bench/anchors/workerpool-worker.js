// workerpool anchor worker (workerpool loads CommonJS or ESM scripts; this one registers by name).
import workerpool from 'workerpool';
import { cpuWork } from '../work.js';
workerpool.worker({
  noop: () => null,
  cpu: (ms) => cpuWork(ms),
  bytes: (data) => data.length,
});
