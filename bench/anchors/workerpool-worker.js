// workerpool anchor worker (workerpool loads CommonJS or ESM scripts; this one registers by name).
import workerpool from 'workerpool';
import { spin } from '../work.js';
workerpool.worker({
  noop: () => null,
  cpu: (iterations) => spin(iterations),
  // Process workers get arguments through JSON, where a Uint8Array becomes { "0": ..., "1": ... }.
  bytes: (data) => data.length ?? Object.keys(data).length,
});
