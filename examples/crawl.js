// weft run examples/crawl.js --executor threads --workers 2 --concurrency 100
// I/O-bound work: fetch 2,000 pages from a local HTTP server that answers each after 20 ms.
// With one task per worker, 2 workers fetch 2 pages at a time (about 100 pages/s); with
// `concurrency` 100 each worker keeps 100 requests in flight while they wait on the network.
import { createServer } from 'node:http';
import { task, taskContext } from 'weftjs';

/** Fetches one page and returns its size; the request is aborted if the task is cancelled. */
export const fetchPage = task(
  async function fetchPage(url) {
    const response = await fetch(url, { signal: taskContext().signal });
    return (await response.text()).length;
  },
  { retries: 2, timeoutMs: 10_000 },
);

export default async function crawl(executor) {
  // A stand-in for the web: answers every page after 20 ms.
  const server = createServer((req, res) => setTimeout(() => res.end(`page ${req.url}`), 20));
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  try {
    const urls = Array.from({ length: 2000 }, (_, i) => `http://127.0.0.1:${port}/${i}`);
    const started = performance.now();
    const sizes = await executor.wait(executor.map(fetchPage, urls));
    const seconds = (performance.now() - started) / 1000;
    const bytes = sizes.reduce((a, b) => a + b, 0);
    return `${urls.length} pages (${bytes} bytes) in ${seconds.toFixed(2)} s: ${Math.round(urls.length / seconds)} pages/s`;
  } finally {
    server.close();
  }
}
