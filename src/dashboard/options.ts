/**
 * The `dashboard` option every executor takes, its validation (done in the executor's
 * constructor, and again by `startDashboard` for `weft dashboard`), and which host names count as
 * loopback. Kept apart from server.ts so that constructing an executor loads no HTTP server.
 */
import { isIP } from 'node:net';
import { ConfigurationError } from '../core/errors.js';
import type { Explanation } from '../core/explain.js';
import { checkOptionKeys, describeOption, optionDefaults, optionKeys } from '../core/options.js';

/** What a running dashboard gives back (see server.ts). */
export interface DashboardHandle {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * How the dashboard explains a task when its bar or error is clicked: the explanation of the task
 * with this future key, or undefined when the caller does not know (or no longer keeps) it. An
 * executor passes one over its own tasks; `weft dashboard` one that asks the cluster's clients.
 */
export type ExplainByKey = (
  key: string,
) => Promise<Explanation | undefined> | Explanation | undefined;

/** Where the dashboard listens. */
export interface DashboardSettings {
  /** Port to listen on, an integer from 0 to 65535. Default 0: a free one, which `dashboardUrl` names. */
  port?: number;
  /**
   * Address to bind (default `127.0.0.1`). The page shows task names, arguments in error messages
   * and stacks: bind a non-loopback address (e.g. `0.0.0.0`) only on a trusted network. weft
   * prints a warning on stderr when you do.
   */
  host?: string;
}

/**
 * `dashboard` option of every executor: `true` serves a live view of the work on 127.0.0.1 (a free
 * port) while the executor is started; `{ port, host }` chooses where. The URL is printed on
 * stderr (`Dashboard: http://127.0.0.1:PORT/`) and is `executor.dashboardUrl`.
 * @example
 * new LocalPoolExecutor({ dashboard: { port: 8787 } });
 */
export type DashboardOption = boolean | DashboardSettings;

const settingKeys = optionKeys<DashboardSettings>({ port: true, host: true });

/**
 * Validates a `dashboard` option; returns the settings to serve with, or undefined for none.
 * Throws `ConfigurationError` naming `owner` (e.g. `LocalExecutor`) for a bad value.
 */
export function parseDashboardOption(
  value: unknown,
  owner: string,
): Required<DashboardSettings> | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true)
    return { port: optionDefaults.dashboardPort, host: optionDefaults.dashboardHost };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigurationError(
      `${owner} dashboard must be true, false or { port, host }, got ${describeOption(value)}.`,
    );
  }
  checkOptionKeys(value, settingKeys, `${owner} dashboard`);
  return parseDashboardSettings(value, `${owner} dashboard`);
}

/** Validates a port and a host to serve on; applies the defaults. */
export function parseDashboardSettings(
  settings: DashboardSettings,
  owner: string,
): Required<DashboardSettings> {
  const port = settings.port ?? optionDefaults.dashboardPort;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigurationError(
      `${owner} port must be an integer from 0 to 65535 (0: a free one), got ${describeOption(settings.port)}. Pass dashboard: { port: 8787 } or leave it out.`,
    );
  }
  const host = settings.host ?? optionDefaults.dashboardHost;
  if (
    typeof host !== 'string' ||
    !(isIP(host) || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))
  ) {
    throw new ConfigurationError(
      `${owner} host must be an IP address or host name to bind, e.g. 127.0.0.1, got ${describeOption(settings.host)}.`,
    );
  }
  return { port, host };
}

/** True for an address or name that only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || /^::ffff:127\./.test(name);
  return false;
}
