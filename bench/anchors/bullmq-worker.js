// Raw BullMQ anchor worker: the same workloads as weft's, written directly with BullMQ.
import { Worker } from 'bullmq';
import { get, wait } from '../io-tasks.js';
import { spin } from '../work.js';

const [address, concurrency] = process.argv.slice(2);
const url = new URL(address);
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };

const worker = new Worker(
  'anchor',
  async (job) => {
    if (job.name === 'noop') return null;
    if (job.name === 'sleep') return wait(job.data.ms);
    if (job.name === 'get') return get(job.data.url);
    if (job.name === 'cpu') return spin(job.data.iterations);
    // The payload went through JSON as a Buffer: { type: 'Buffer', data: [...] }.
    if (job.name === 'bytes') return job.data.bytes.data.length;
    return null;
  },
  { connection, prefix: 'anchor', concurrency: Number(concurrency), drainDelay: 1 },
);
worker.on('error', () => undefined);
worker.on('ready', () => process.send?.('ready'));
process.on('disconnect', () => process.exit(0));
