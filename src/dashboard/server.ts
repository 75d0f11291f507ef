/**
 * The live dashboard: an HTTP server (127.0.0.1 by default) that serves one page and its assets,
 * a JSON snapshot at `/api/state` and a Server-Sent Events stream at `/api/events`. State is
 * aggregated as events arrive (see state.ts), so a run of any size costs bounded memory and each
 * update is small. Chart.js, which draws the task stream, is read from the installed package:
 * nothing is fetched from the internet.
 *
 * Live stream protocol (`/api/events`). The server writes `retry: 2000`, then one `data:` line of
 * JSON per message: at most every `updateEveryMs`, only when an event arrived since the last one
 * (or once a second while attempts run, so their bars grow), and a `: keep-alive` comment after
 * 15 s of silence. Each message is a `LiveUpdate`: a `Snapshot` (state.ts) where
 * - `full` is true on the first message: `bars` holds every kept bar;
 * - otherwise `bars` holds only bars newer than the previous message's `lastSeq`;
 * - `errors` is present only when `errorsVersion` changed since the previous message.
 * The page appends bars and keeps its errors until new ones come.
 *
 * `/api/explain?key=KEY` answers a task's `Explanation` (core/explain.ts) as JSON, from the
 * `explain` option: 200 with it, 404 with `{ message }` when the task is not known here, 500 with
 * `{ message }` when explaining failed. The page asks it about a clicked bar or error once a second
 * while it shows the answer.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { ConfigurationError } from '../core/errors.js';
import type { ExecutorEvents } from '../core/events.js';
import {
  isLoopback,
  parseDashboardSettings,
  type DashboardHandle,
  type ExplainByKey,
} from './options.js';
import { pageCss, pageHtml } from './page.js';
import { DashboardState, type ErrorView, type Snapshot } from './state.js';

/** Where and under which title `startDashboard` serves the page. */
export interface DashboardOptions {
  /** Shown in the page title, e.g. `LocalPoolExecutor (threads)`. */
  label: string;
  /** Port to listen on, 0 to 65535. Default 0: a free one, which the returned URL names. */
  port?: number;
  /**
   * Address to bind. Default 127.0.0.1: the page shows task names, arguments in error messages
   * and stacks, so expose it to other machines (e.g. `0.0.0.0`) only on a trusted network; a
   * non-loopback address prints a warning on stderr.
   */
  host?: string;
  /** Where the non-loopback warning goes (default `process.stderr`). */
  warn?: (line: string) => void;
  /**
   * Explains a task by key when the page asks (a click on its bar or error). Without it the page
   * says that this dashboard cannot explain tasks.
   */
  explain?: ExplainByKey;
}

/** One message on the live stream (see the protocol above). */
export type LiveUpdate = Omit<Snapshot, 'errors'> & { full: boolean; errors?: ErrorView[] };

/** Shortest time between two messages to one page. */
export const updateEveryMs = 250;
const runningRefreshMs = 1_000;
const keepAliveMs = 15_000;

/** A page on the live stream and what it has been sent. */
interface Stream {
  response: ServerResponse;
  lastSeq: number;
  version: number;
  errorsVersion: number;
  sentAt: number;
}

let chartSource: string | undefined;
let pageScript: string | undefined;

/** The page's script, compiled by tsc from browser/dashboard.ts (see tsconfig.browser.json). */
function dashboardJs(): string {
  pageScript ??= readFileSync(new URL('./browser/dashboard.js', import.meta.url), 'utf8');
  return pageScript;
}

function chartJs(): string {
  // chart.js (a dependency) exports only its module entries; the UMD build sits beside them in dist/.
  chartSource ??= readFileSync(
    join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    'utf8',
  );
  return chartSource;
}

/**
 * Serves a live view of `events` and resolves, once listening, with its URL and `close()`.
 * Rejects with `ConfigurationError` for a bad port or host, a port in use or an address that
 * cannot be bound. `close()` ends open pages' streams, unsubscribes and stops the server; it is
 * idempotent. The server never keeps the process alive by itself.
 */
export async function startDashboard(
  events: ExecutorEvents,
  options: DashboardOptions,
): Promise<DashboardHandle> {
  const { host, port } = parseDashboardSettings(options, 'Dashboard');

  const state = new DashboardState(options.label);
  const streams = new Set<Stream>();
  const html = pageHtml(options.label);
  // When bound to loopback, answer only requests addressed to the bound name or address (or
  // localhost) on its port: a page on another site that rebinds its DNS name to 127.0.0.1 (also
  // `127.0.0.1.evil.example`) must not read task errors and stacks. Filled once listening.
  const checkHost = isLoopback(host);
  let allowedHosts: Set<string> | undefined;

  const send = (stream: Stream, now: number): void => {
    const full = stream.version === -1;
    const withErrors = full || stream.errorsVersion !== state.errorsVersion;
    const { errors, ...snapshot } = state.snapshot(stream.lastSeq, withErrors);
    const update: LiveUpdate = { ...snapshot, full, ...(withErrors ? { errors } : {}) };
    stream.lastSeq = snapshot.lastSeq;
    stream.version = snapshot.version;
    stream.errorsVersion = snapshot.errorsVersion;
    stream.sentAt = now;
    stream.response.write(`data: ${JSON.stringify(update)}\n\n`);
  };

  const tick = (): void => {
    const now = Date.now();
    for (const stream of streams) {
      // A page that does not keep up gets its bars later, in one message (at most maxBars).
      if (stream.response.writableNeedDrain) continue;
      if (stream.version !== state.version) send(stream, now);
      else if (state.runningCount > 0 && now - stream.sentAt >= runningRefreshMs) send(stream, now);
      else if (now - stream.sentAt >= keepAliveMs) {
        stream.sentAt = now;
        stream.response.write(': keep-alive\n\n');
      }
    }
  };

  const route = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      respond(response, 405, 'text/plain', 'The weft dashboard only answers GET.', {
        allow: 'GET, HEAD',
      });
      return;
    }
    const hostHeader = (request.headers.host ?? '').toLowerCase();
    if (checkHost && !allowedHosts?.has(hostHeader)) {
      respond(
        response,
        403,
        'text/plain',
        `The weft dashboard answers requests for ${[...(allowedHosts ?? [])].join(' or ')} only, not for "${hostHeader}". Open the URL it printed.`,
      );
      return;
    }
    const url = new URL(request.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case '/':
      case '/index.html':
        respond(response, 200, 'text/html; charset=utf-8', html, {
          // Everything comes from this server; scripts only from files (no inline script).
          'content-security-policy':
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        });
        return;
      case '/assets/dashboard.js':
        respond(response, 200, 'text/javascript; charset=utf-8', dashboardJs());
        return;
      case '/assets/dashboard.css':
        respond(response, 200, 'text/css; charset=utf-8', pageCss);
        return;
      case '/assets/chart.js':
        respond(response, 200, 'text/javascript; charset=utf-8', chartJs(), {
          'cache-control': 'max-age=3600',
        });
        return;
      case '/api/state': {
        const since = Number(url.searchParams.get('since') ?? 0);
        const snapshot = state.snapshot(Number.isFinite(since) ? since : 0);
        respond(response, 200, 'application/json', JSON.stringify(snapshot));
        return;
      }
      case '/api/explain': {
        explainTask(response, url.searchParams.get('key') ?? '', options.explain);
        return;
      }
      case '/api/events': {
        response.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        response.write('retry: 2000\n\n');
        const stream: Stream = { response, lastSeq: 0, version: -1, errorsVersion: -1, sentAt: 0 };
        streams.add(stream);
        response.on('close', () => streams.delete(stream));
        send(stream, Date.now());
        return;
      }
      case '/favicon.ico':
        response.writeHead(204, { 'cache-control': 'max-age=86400' });
        response.end();
        return;
      default:
        respond(response, 404, 'text/plain', `Not found: ${url.pathname}`);
    }
  };

  const server = createServer((request, response) => {
    try {
      route(request, response);
    } catch (error) {
      if (!response.headersSent) {
        respond(response, 500, 'text/plain', `weft dashboard: ${String(error)}`);
      } else response.end();
    }
  });
  // The executor (or `weft dashboard`) decides how long the process lives, not an open tab.
  server.on('connection', (socket) => socket.unref());

  // Subscribe before listening, so nothing that happens while the socket binds is missed.
  const unsubscribe = events.on('*', (event) => state.apply(event));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    unsubscribe();
    throw listenError(error as NodeJS.ErrnoException, host, port);
  }
  server.unref();
  const timer = setInterval(tick, updateEveryMs);
  timer.unref();

  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  if (checkHost) {
    const names = new Set([host.toLowerCase(), shownHost.toLowerCase(), 'localhost']);
    allowedHosts = new Set();
    for (const name of names) {
      const bracketed = isIPv6(name) ? `[${name}]` : name;
      allowedHosts.add(`${bracketed}:${address.port}`);
      // No port in the header means port 80: right only when that is where it listens.
      if (address.port === 80) allowedHosts.add(bracketed);
    }
    allowedHosts.add('localhost');
  } else {
    (options.warn ?? ((line) => process.stderr.write(`${line}\n`)))(
      `weft dashboard: warning: bound to ${host}, which is not a loopback address: anyone who can reach port ${address.port} of this machine can see task names, arguments in error messages and stacks. Bind it to 127.0.0.1 (the default) unless this network is trusted.`,
    );
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        unsubscribe();
        // A last update, so open pages show the final state, then end their streams.
        const now = Date.now();
        for (const stream of streams) {
          if (stream.version !== state.version) send(stream, now);
          stream.response.end();
        }
        streams.clear();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

/** Answers `/api/explain` (protocol above). */
function explainTask(
  response: ServerResponse,
  key: string,
  explain: ExplainByKey | undefined,
): void {
  const fail = (status: number, message: string): void =>
    respond(response, status, 'application/json', JSON.stringify({ message }));
  if (!explain) {
    fail(
      404,
      'This dashboard cannot explain tasks: it was started without an executor to ask. Use executor.explain(future) in the program that submitted the task.',
    );
    return;
  }
  if (!key) {
    fail(400, 'Ask /api/explain?key=KEY with the key of a task (Future.key).');
    return;
  }
  let answer: ReturnType<ExplainByKey>;
  try {
    answer = explain(key);
  } catch (error) {
    fail(500, `Explaining task ${key} failed: ${String(error)}`);
    return;
  }
  Promise.resolve(answer).then(
    (explanation) => {
      if (response.destroyed) return;
      if (explanation) respond(response, 200, 'application/json', JSON.stringify(explanation));
      else
        fail(
          404,
          `No task with key ${key} is known here: the dashboard explains unsettled tasks and the latest settled ones of this run, and this one is gone or was never submitted here.`,
        );
    },
    (error: unknown) => {
      if (!response.destroyed) fail(500, `Explaining task ${key} failed: ${String(error)}`);
    },
  );
}

function respond(
  response: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function isIPv6(name: string): boolean {
  return name.includes(':') && !name.startsWith('[');
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new ConfigurationError(
        `The dashboard cannot listen on ${host}:${port}: the port is in use. Pick another port, or 0 for a free one.`,
        { cause: error },
      );
    case 'EACCES':
      return new ConfigurationError(
        `The dashboard may not listen on ${host}:${port} (ports below 1024 need privileges). Pick a port from 1024, or 0 for a free one.`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigurationError(
        `The dashboard cannot bind to host "${host}" (${error.code}): it is not an address of this machine. Use 127.0.0.1 (the default) or one of this machine's addresses.`,
        { cause: error },
      );
    default:
      return error;
  }
}
