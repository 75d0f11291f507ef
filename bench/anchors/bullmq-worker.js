// Raw BullMQ anchor worker: the same workloads as weft's, written directly with BullMQ.
import { Worker } from 'bullmq';

const [address, concurrency] = process.argv.slice(2);
const url = new URL(address);
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };

function spin(ms) {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
}

const worker = new Worker(
  'anchor',
  async (job) => {
    if (job.name === 'noop') return null;
    if (job.name === 'cpu') return spin(job.data.ms);
    if (job.name === 'bytes') return Object.keys(job.data.bytes).length;
    return null;
  },
  { connection, prefix: 'anchor', concurrency: Number(concurrency), drainDelay: 1 },
);
worker.on('error', () => undefined);
worker.on('ready', () => process.send?.('ready'));
process.on('disconnect', () => process.exit(0));
