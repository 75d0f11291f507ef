// A weft cluster worker for the trust rows of the benchmark: options (address, tls paths) as JSON
// in WEFT_BENCH_WORKER; says 'ready' over IPC once it takes tasks; leaves with its parent.
import { startClusterWorker } from '../../dist/index.js';

const options = JSON.parse(process.env.WEFT_BENCH_WORKER ?? '{}');
const handle = await startClusterWorker(options);
process.send?.('ready');
process.on('disconnect', () => void handle.close().finally(() => process.exit(0)));
