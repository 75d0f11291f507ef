/**
 * `weft dashboard --address URL`: a live dashboard of a running cluster, until SIGINT/SIGTERM. A
 * click on a task asks the cluster for its explanation the way `weft explain` does.
 */
import { ConfigurationError } from '../core/errors.js';
import { parseAddress } from '../distributed/connection.js';
import { Signer, secretsFromEnvironment, secretsFromFile } from '../distributed/signing.js';
import { watchCluster } from '../distributed/watch.js';
import { redactAddress } from '../distributed/wire.js';
import { startDashboard } from '../dashboard/server.js';

export async function dashboardCommand(options: {
  address?: string;
  port?: string;
  prefix?: string;
  secretFile?: string;
}): Promise<void> {
  const address = options.address ?? process.env.WEFT_ADDRESS?.trim();
  if (!address) {
    throw new ConfigurationError(
      'weft dashboard needs --address redis://host:port (or WEFT_ADDRESS): the Redis of the cluster to watch.',
    );
  }
  parseAddress(address, '--address');
  const port = options.port === undefined ? undefined : parsePort(options.port);
  const secrets = options.secretFile
    ? secretsFromFile(options.secretFile)
    : secretsFromEnvironment();
  const watch = await watchCluster(
    address,
    options.prefix,
    secrets ? new Signer(secrets) : undefined,
  );
  const dashboard = await startDashboard(watch.events, {
    label: `cluster ${redactAddress(address)}`,
    explain: (key) => watch.explain(key),
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

function parsePort(text: string): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port > 65535) {
    throw new ConfigurationError(
      `--port must be a port number (0-65535), got ${JSON.stringify(text)}.`,
    );
  }
  return port;
}
