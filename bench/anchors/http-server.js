// W5's HTTP server, in its own process so that it never shares an event loop with a client:
// answers every request after WEFT_BENCH_DELAY_MS (20 ms), tells its parent its port over IPC,
// and leaves with its parent.
import http from 'node:http';

const delay = Number(process.env.WEFT_BENCH_DELAY_MS ?? 20);
const server = http.createServer((req, res) => {
  req.resume();
  setTimeout(() => res.end('ok'), delay);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
