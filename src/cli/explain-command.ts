/**
 * `weft explain KEY --address URL`: why a task of a live cluster is where it is, from another
 * terminal. Asks the client that submitted it (it answers while it runs), else reads what the
 * client stored when the task failed (kept a day). Exit codes: 0 found, 1 unknown key, 2 bad
 * arguments.
 */
import { ConfigurationError } from '../core/errors.js';
import { effectivePrefix } from '../distributed/address.js';
import { connect, parseAddress, waitForRedis } from '../distributed/connection.js';
import { requestExplanation } from '../distributed/explain.js';
import { Signer, secretsFromEnvironment, secretsFromFile } from '../distributed/signing.js';
import { tlsFromEnvironment } from '../distributed/tls.js';
import { redactAddress } from '../distributed/wire.js';
import { CliError } from './run.js';

export interface ExplainCommandOptions {
  address?: string;
  prefix?: string;
  secretFile?: string;
  json?: boolean;
}

export async function explainCommand(key: string, options: ExplainCommandOptions): Promise<void> {
  const address = options.address ?? process.env.WEFT_ADDRESS;
  if (!address) {
    throw new ConfigurationError(
      'weft explain needs --address redis://host:port (or WEFT_ADDRESS): the Redis of the cluster the task runs on.',
    );
  }
  parseAddress(address, '--address');
  if (!key.trim())
    throw new ConfigurationError(
      'weft explain needs a task key, e.g. weft explain render-3f2a01 --address URL.',
    );
  const prefix = effectivePrefix(options.prefix ?? 'weft', address);
  const secrets = options.secretFile
    ? secretsFromFile(options.secretFile)
    : secretsFromEnvironment();
  const target = {
    address,
    ...(/^rediss/i.test(address) ? { tls: tlsFromEnvironment() } : {}),
  };
  const redis = connect(target, 'weft-explain');
  try {
    await waitForRedis(redis, target, 10_000);
    const explanation = await requestExplanation(
      redis,
      prefix,
      key,
      secrets ? new Signer(secrets) : undefined,
    );
    if (!explanation) {
      throw new CliError(
        `weft explain: no task with key ${key} on the cluster at ${redactAddress(address)} (prefix ${prefix}). Keys are printed by Future.key, by task events (their key field) and on the dashboard; a task is known while the client that submitted it runs, and a failed one for a day after.`,
        1,
      );
    }
    process.stdout.write(
      options.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${explanation.text}\n`,
    );
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}
