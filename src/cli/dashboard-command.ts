/**
 * `weft dashboard --address URL`: a live dashboard of a running cluster, until SIGINT/SIGTERM.
 */
import { ConfigurationError } from '../core/errors.js';
import { parseAddress } from '../distributed/connection.js';
import { watchCluster } from '../distributed/watch.js';
import { redactAddress } from '../distributed/wire.js';
import { startDashboard } from '../dashboard/server.js';

export async function dashboardCommand(options: {
  address: string;
  port?: string;
  prefix?: string;
}): Promise<void> {
  parseAddress(options.address, '--address');
  const port = options.port === undefined ? undefined : Number(options.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new ConfigurationError(
      `--port must be a port number (0-65535), got ${JSON.stringify(options.port)}.`,
    );
  }
  const watch = await watchCluster(options.address, options.prefix);
  const dashboard = await startDashboard(watch.events, {
    label: `cluster ${redactAddress(options.address)}`,
    ...(port === undefined ? {} : { port }),
  });
  process.stderr.write(`Dashboard: ${dashboard.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await dashboard.close();
  await watch.close();
}
