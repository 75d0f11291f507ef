/**
 * The live dashboard: an HTTP server on 127.0.0.1 that serves one page, a JSON snapshot
 * (`/api/state`) and a Server-Sent Events stream (`/api/events`) of aggregated state at most four
 * times a second. Chart.js, which draws the task stream, is served from the installed package:
 * nothing is fetched from the internet.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigurationError } from '../core/errors.js';
import type { ExecutorEvents } from '../core/events.js';
import type { DashboardHandle } from '../executors/base.js';
import { pageHtml } from './page.js';
import { DashboardState } from './state.js';

export interface DashboardOptions {
  /** Shown in the page title, e.g. `LocalPoolExecutor (threads)`. */
  label: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Address to bind (default 127.0.0.1: the page shows task errors and stacks). */
  host?: string;
}

const updateEveryMs = 250;
let chartSource: string | undefined;

function chartJs(): string {
  // Read once from the installed chart.js package (a dependency), never from a CDN.
  // chart.js exports only its module entries; the UMD build sits beside them in dist/.
  chartSource ??= readFileSync(
    join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    'utf8',
  );
  return chartSource;
}

/** Serves a live view of `events`; resolves once listening, with its URL. */
export async function startDashboard(
  events: ExecutorEvents,
  options: DashboardOptions,
): Promise<DashboardHandle> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigurationError(
      `dashboard port must be an integer from 0 to 65535 (0: a free one), got ${String(options.port)}.`,
    );
  }
  if (typeof host !== 'string' || host === '') {
    throw new ConfigurationError(
      `dashboard host must be an address to bind, e.g. 127.0.0.1, got ${String(options.host)}.`,
    );
  }
  const state = new DashboardState(options.label);
  const unsubscribe = events.on('*', (event) => state.apply(event));
  const streams = new Set<ServerResponse>();
  const html = pageHtml(options.label);

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    try {
      route(request, response);
    } catch (error) {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`weft dashboard: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  const route = (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/') {
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      response.end(html);
    } else if (url.pathname === '/assets/chart.js') {
      response.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'max-age=3600',
      });
      response.end(chartJs());
    } else if (url.pathname === '/api/state') {
      const since = Number(url.searchParams.get('since') ?? 0) || 0;
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(state.snapshot(since)));
    } else if (url.pathname === '/api/events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      (response as ServerResponse & { lastSeq: number }).lastSeq = 0;
      streams.add(response);
      request.on('close', () => streams.delete(response));
      push(response);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found');
    }
  };
  const push = (response: ServerResponse): void => {
    const r = response as ServerResponse & { lastSeq: number };
    const snapshot = state.snapshot(r.lastSeq);
    r.lastSeq = snapshot.lastSeq;
    response.write(`data: ${JSON.stringify(snapshot)}\n\n`);
  };
  const timer = setInterval(() => {
    for (const response of streams) push(response);
  }, updateEveryMs);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new ConfigurationError(
              `The dashboard cannot listen on ${host}:${port}: the port is taken. Pick another port, or 0 for a free one.`,
            )
          : error,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    async close() {
      clearInterval(timer);
      unsubscribe();
      // A last update so open pages show the final state, then end the streams.
      for (const response of streams) {
        push(response);
        response.end();
      }
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
