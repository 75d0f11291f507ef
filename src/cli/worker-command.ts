/**
 * `weft worker --address URL`: joins a cluster and runs its tasks until SIGINT/SIGTERM, then
 * stops taking tasks, finishes the running ones and leaves.
 */
import { ConfigurationError } from '../core/errors.js';
import { parseResourceList } from '../core/resources.js';
import { startClusterWorker } from '../distributed/worker.js';
import { parseAddress } from '../distributed/connection.js';
import { secretsFromEnvironment, secretsFromFile } from '../distributed/signing.js';
import { checkTlsAddress, resolveTls, tlsFromEnvironment } from '../distributed/tls.js';

export interface WorkerCommandOptions {
  address?: string;
  concurrency?: string;
  poolSize?: string;
  resources?: string;
  import?: string[];
  name?: string;
  source?: boolean;
  pool?: string;
  prefix?: string;
  secretFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  connectTimeoutMs?: string;
}

/** Validates a positive integer flag such as `--concurrency 100`. */
function parsePositive(value: string, flag: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) {
    throw new ConfigurationError(
      `${flag} must be a positive integer, got ${JSON.stringify(value)}; write e.g. ${flag} 8.`,
    );
  }
  return n;
}

export async function workerCommand(options: WorkerCommandOptions): Promise<void> {
  const address = options.address ?? process.env.WEFT_ADDRESS;
  if (!address) {
    throw new ConfigurationError(
      'weft worker needs --address redis://host:port (or WEFT_ADDRESS): the Redis of the cluster to join.',
    );
  }
  parseAddress(address, '--address');
  const concurrency =
    options.concurrency === undefined ? 1 : parsePositive(options.concurrency, '--concurrency');
  const poolSize =
    options.poolSize === undefined ? undefined : parsePositive(options.poolSize, '--pool-size');
  if (poolSize !== undefined && poolSize > concurrency) {
    throw new ConfigurationError(
      `--pool-size ${poolSize} is larger than --concurrency ${concurrency}: a pool worker without a task to run would sit idle. Pass a --pool-size between 1 and ${concurrency}, or raise --concurrency.`,
    );
  }
  const connectTimeoutMs =
    options.connectTimeoutMs === undefined
      ? undefined
      : parsePositive(options.connectTimeoutMs, '--connect-timeout-ms');
  const resources = options.resources ? parseResourceList(options.resources) : {};
  const pool = options.pool ?? 'threads';
  if (pool !== 'threads' && pool !== 'processes') {
    throw new ConfigurationError(
      `--pool must be threads or processes, got ${JSON.stringify(pool)}.`,
    );
  }
  // A file, not a flag value: a command line is visible to every user of the machine (ps).
  const secret = options.secretFile
    ? secretsFromFile(options.secretFile)
    : secretsFromEnvironment();
  const flags = {
    ...(options.tlsCa ? { ca: options.tlsCa } : {}),
    ...(options.tlsCert ? { cert: options.tlsCert } : {}),
    ...(options.tlsKey ? { key: options.tlsKey } : {}),
  };
  const tls =
    Object.keys(flags).length > 0
      ? resolveTls(flags, '--tls-*')
      : /^rediss/i.test(address)
        ? tlsFromEnvironment()
        : undefined;
  checkTlsAddress(tls, address, '--tls-*');
  const handle = await startClusterWorker({
    address,
    concurrency,
    ...(poolSize === undefined ? {} : { poolSize }),
    resources,
    imports: options.import ?? [],
    ...(options.name ? { name: options.name } : {}),
    acceptSource: options.source !== false,
    pool,
    ...(options.prefix ? { prefix: options.prefix } : {}),
    ...(secret ? { secret } : {}),
    ...(tls ? { tls } : {}),
    ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
    log: (line) => process.stderr.write(`weft worker: ${line}\n`),
  });
  await new Promise<void>((resolve) => {
    const leave = (signal: NodeJS.Signals): void => {
      process.stderr.write(
        `weft worker: ${signal}: finishing running tasks, then leaving (send SIGINT or SIGTERM again to stop at once)\n`,
      );
      // A second signal of either kind ends the process without waiting for running tasks.
      const now = (again: NodeJS.Signals): void => {
        process.stderr.write(`weft worker: ${again} again: stopping now\n`);
        process.exit(again === 'SIGINT' ? 130 : 143);
      };
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGTERM', onTerm);
      process.once('SIGINT', () => now('SIGINT'));
      process.once('SIGTERM', () => now('SIGTERM'));
      void handle.close().then(resolve);
    };
    const onInt = (): void => leave('SIGINT');
    const onTerm = (): void => leave('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}
