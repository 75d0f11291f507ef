/**
 * Signed jobs and results (HMAC-SHA256). With a secret, a client signs every job and a worker
 * signs every result; each side signs with its first secret and accepts any of its own (so that
 * secrets can rotate). A signature covers the payload and what identifies it, so that it cannot
 * be moved to another job, queue, client or attempt:
 *
 *   job     `weft-job-v1` | queue name | job id | client id | JSON of the attempts | payload bytes
 *   result  `weft-result-v1` | client id | attempt id | future key | attempt number | status |
 *           worker name | payload bytes (absent: empty)
 *   results `weft-results-v1` | client id | worker name | v8 bytes of the batch (each result's
 *           attempt id, status and payload)
 *
 * Fields are joined with a 0 byte; none of the text fields can hold one (ids, keys, names), and
 * the payload comes last. Secrets live only in a `Signer`'s private field: never logged, never
 * in an error, an event or a process's command line.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../core/errors.js';

/** Signs with the first secret, verifies against any. */
export class Signer {
  /** Key objects, made once: an HMAC keyed by a KeyObject skips importing the key each time. */
  readonly #secrets: KeyObject[];

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets.map((s) => createSecretKey(Buffer.from(s, 'utf8')));
  }

  /** How many secrets it holds (for log lines: never the secrets). */
  get size(): number {
    return this.#secrets.length;
  }

  sign(parts: readonly (string | Buffer)[]): string {
    return mac(this.#secrets[0]!, parts).toString('base64');
  }

  /** True when `signature` was made over `parts` with one of this signer's secrets. */
  verify(parts: readonly (string | Buffer)[], signature: unknown): boolean {
    if (typeof signature !== 'string') return false;
    const given = Buffer.from(signature, 'base64');
    if (given.length !== 32) return false;
    for (const secret of this.#secrets) if (timingSafeEqual(mac(secret, parts), given)) return true;
    return false;
  }

  /** Keeps the secrets out of `util.inspect`, `console.log` and JSON. */
  toJSON(): string {
    return `[Signer with ${this.#secrets.length} secret(s)]`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toJSON();
  }
}

function mac(secret: KeyObject, parts: readonly (string | Buffer)[]): Buffer {
  const hmac = createHmac('sha256', secret);
  // Text fields go in together: each update() is a call into C++, and this runs once per task.
  let text = '';
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) text += '\0';
    const part = parts[i]!;
    if (typeof part === 'string') text += part;
    else {
      if (text) hmac.update(text);
      text = '';
      hmac.update(part);
    }
  }
  if (text) hmac.update(text);
  return hmac.digest();
}

/** What a job's signature covers, in order. */
export function jobParts(
  queue: string,
  jobId: string,
  clientId: string,
  attemptsJson: string,
  payload: Buffer,
): (string | Buffer)[] {
  return ['weft-job-v1', queue, jobId, clientId, attemptsJson, payload];
}

/** What a result's signature covers, in order. */
export function resultParts(
  clientId: string,
  attemptId: number,
  key: string,
  attemptNumber: number,
  status: string,
  worker: string,
  payload: Buffer | undefined,
): (string | Buffer)[] {
  return [
    'weft-result-v1',
    clientId,
    String(attemptId),
    key,
    String(attemptNumber),
    status,
    worker,
    payload ?? Buffer.alloc(0),
  ];
}

/** What a batch of results' signature covers: the client it is for, the worker, the batch. */
export function batchParts(clientId: string, worker: string, batch: Buffer): (string | Buffer)[] {
  return ['weft-results-v1', clientId, worker, batch];
}

/**
 * Checks the `secret` option (a string or an array of them) and returns the list, or undefined
 * for none. `source` names the option in the error; the error never shows a secret's value.
 */
export function parseSecrets(value: unknown, source: string): string[] | undefined {
  if (value === undefined) return undefined;
  const list: unknown[] = Array.isArray(value) ? value : [value];
  if (list.length === 0)
    throw new ConfigurationError(
      `${source} is an empty list; give at least one secret (or leave it out to run unsigned).`,
    );
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) {
      throw new ConfigurationError(
        `${source}${Array.isArray(value) ? `[${i}]` : ''} must be a non-empty string, got ${typeof s === 'string' ? 'an empty string' : typeof s}.`,
      );
    }
    if (s.trim() !== s)
      throw new ConfigurationError(
        `${source}${Array.isArray(value) ? `[${i}]` : ''} starts or ends with whitespace, which WEFT_SECRET and --secret-file would drop; pick a secret without it.`,
      );
    if (s.includes(',') || /[\r\n]/.test(s))
      throw new ConfigurationError(
        `${source}${Array.isArray(value) ? `[${i}]` : ''} contains a comma or a line break, which WEFT_SECRET and --secret-file use to separate secrets; pick a secret without them (e.g. openssl rand -hex 32).`,
      );
  });
  return list as string[];
}

/** Secrets from `WEFT_SECRET` (comma-separated), or undefined when it is unset or empty. */
export function secretsFromEnvironment(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const raw = env.WEFT_SECRET;
  if (raw === undefined || raw.trim() === '') return undefined;
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return parseSecrets(list, 'WEFT_SECRET');
}

/** Secrets from a file, one per line (a trailing newline and blank lines are ignored). */
export function secretsFromFile(path: string, source = '--secret-file'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigurationError(
      `${source} ${path} could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); give the path of a file that holds the secret, one per line.`,
    );
  }
  const list = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw new ConfigurationError(`${source} ${path} is empty; write the secret into it.`);
  return parseSecrets(list, `${source} ${path}`)!;
}

/** Why a worker refuses a job, and whom to tell. */
export interface JobRefusal {
  /** For the worker's log: no secret, no payload. */
  log: string;
  /** For the client's `SignatureError`, after "Worker W refused task T (key K): ". */
  reason: string;
  /** The client the job names, when it names one (unverified: the job may be forged). */
  client: string | undefined;
  attempts: { i: number; k: string; n: number; name: string }[];
}

/**
 * Checks a job before anything in it is decoded, loaded or run: its shape, and with a signer its
 * signature; a worker without a signer refuses signed jobs (the two sides' secrets differ).
 * `payload` is the job's argument bytes (null when they are gone from Redis). Returns undefined
 * when the job may run.
 */
export function checkJob(
  signer: Signer | undefined,
  queue: string,
  jobId: string | undefined,
  data: unknown,
  payload: Buffer | null,
): JobRefusal | undefined {
  const job = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const client = typeof job.c === 'string' ? job.c : undefined;
  const attempts: JobRefusal['attempts'] = [];
  const list = Array.isArray(job.t) ? (job.t as unknown[]) : undefined;
  for (const entry of list ?? []) {
    const w = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const ref = (typeof w.ref === 'object' && w.ref !== null ? w.ref : {}) as Record<
      string,
      unknown
    >;
    if (typeof w.i === 'number' && typeof w.k === 'string' && typeof w.n === 'number')
      attempts.push({
        i: w.i,
        k: w.k,
        n: w.n,
        name: typeof ref.name === 'string' ? ref.name : '(unnamed)',
      });
  }
  const refuse = (log: string, reason: string): JobRefusal => ({
    log: `${log} (client ${client ?? 'unknown'}, ${attempts.length} task(s))`,
    reason,
    client,
    attempts,
  });
  const wellFormed =
    client !== undefined &&
    typeof jobId === 'string' &&
    list !== undefined &&
    attempts.length === list.length &&
    attempts.length > 0;
  if (!signer) {
    if (job.s !== undefined)
      return refuse(
        'the job is signed, but this worker has no secret',
        'the job is signed, but this worker has no secret, so it cannot check it. Start the worker with the same secret as the client (weft worker --secret-file PATH, or WEFT_SECRET), or remove the secret from the client.',
      );
    return undefined;
  }
  if (job.s === undefined)
    return refuse(
      'the job is unsigned and this worker runs only signed jobs',
      'the job is unsigned, and this worker runs only signed jobs (it has a secret). Give the client the same secret (the secret option or WEFT_SECRET); if the client has one, the job was not written by a weft client.',
    );
  if (!wellFormed)
    return refuse(
      'the job is malformed (not written by a weft client)',
      'the job is malformed, so it was not written by a weft client.',
    );
  // Arguments gone from Redis: nothing to check or run; the caller reports that.
  if (payload === null) return undefined;
  if (!signer.verify(jobParts(queue, jobId, client, JSON.stringify(list), payload), job.s))
    return refuse(
      'the signature does not match any of this worker secrets: another secret, or the job was changed or moved in Redis',
      "the job's signature does not match any of this worker's secrets. Either the client has another secret (give client and workers the same one; while rotating, give each both), or the job was changed, or copied under another job's identity, in Redis after it was signed.",
    );
  return undefined;
}
