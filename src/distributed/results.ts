/**
 * Receiving results: one entry of this client's result stream (its fields are described in
 * wire.ts) is checked against the client's secrets, decoded and reported to the scheduler.
 */
import { SignatureError, fromEnvelope, type ErrorEnvelope } from '../core/errors.js';
import type { Attempt, RuntimeHost } from '../core/runtime.js';
import type { ClientValues } from './client-values.js';
import type { InFlight } from './in-flight.js';
import { batchParts, resultParts, type Signer } from './signing.js';
import { decode, type BatchedResult, type StoredRef } from './wire.js';

export interface ResultsOptions {
  clientId: string;
  signer: Signer | undefined;
  /** Attempts waiting for their results; each leaves it when its result comes. */
  inflight: InFlight;
  values: ClientValues;
  host: RuntimeHost;
}

export class Results {
  readonly #o: ResultsOptions;

  constructor(options: ResultsOptions) {
    this.#o = options;
  }

  /** One stream entry: a signed batch of results, or a single result. */
  accept(fields: Buffer[]): void {
    let status = '';
    let worker = '';
    let value: Buffer | undefined;
    let batch: Buffer | undefined;
    let ids = '';
    let signature: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i]!.toString();
      const v = fields[i + 1]!;
      if (field === 'b') batch = v;
      else if (field === 'i') ids = v.toString();
      else if (field === 's') status = v.toString();
      else if (field === 'w') worker = v.toString();
      else if (field === 'v') value = v;
      else if (field === 'h') signature = v.toString();
    }
    const { clientId, signer, inflight, host } = this.#o;
    if (batch) {
      // Nothing of a batch is decoded before its signature checks out.
      if (signer && !signer.verify(batchParts(clientId, worker, batch), signature)) {
        // The plain list of attempt ids says whom to tell (it can only make tasks fail).
        for (const id of ids.split(',')) {
          const attempt = inflight.take(Number(id));
          if (!attempt) continue;
          host.settled(attempt, { ok: false, error: badResult(attempt, worker, signature) });
        }
        return;
      }
      let results: BatchedResult[];
      try {
        results = decode(batch) as BatchedResult[];
      } catch {
        return;
      }
      for (const [id, status, payload] of results)
        this.#onResult(
          id,
          status,
          worker,
          payload && Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
        );
      return;
    }
    // A single result in an entry of its own (also what tools and tests write).
    const id = Number(ids);
    const attempt = inflight.get(id);
    if (
      attempt &&
      signer &&
      !signer.verify(
        resultParts(clientId, id, attempt.key, attempt.number, status, worker, value),
        signature,
      )
    ) {
      // A forged `started` changes nothing worth failing for; the real result still decides.
      if (status === 'started') return;
      inflight.delete(id);
      host.settled(attempt, { ok: false, error: badResult(attempt, worker, signature) });
      return;
    }
    this.#onResult(id, status, worker, value);
  }

  /** One result for one attempt, its signature already checked. */
  #onResult(id: number, status: string, worker: string, value: Buffer | undefined): void {
    const { inflight, host, values } = this.#o;
    const attempt = inflight.get(id);
    if (!attempt) {
      // The attempt was cancelled while it ran: nobody will read what it stored. (A second
      // report of an attempt that ran twice, its job taken again after a lost lock, names the
      // key the first one did: that value is in use.)
      if (status === 'ref' && value) void values.drop(value);
      return;
    }
    if (status === 'started') {
      host.started(attempt, worker);
      return;
    }
    inflight.delete(id);
    try {
      if (worker) host.ranOn?.(attempt, worker);
      if (status === 'ok')
        host.settled(attempt, { ok: true, value: value ? decode(value) : undefined });
      else if (status === 'ref')
        host.settled(attempt, {
          ok: true,
          value: values.remote(decode(value!) as StoredRef, attempt.key, worker || undefined),
        });
      else
        host.settled(attempt, { ok: false, error: fromEnvelope(decode(value!) as ErrorEnvelope) });
    } catch (error) {
      host.settled(attempt, { ok: false, error });
    }
  }
}

/** The error for a result that is unsigned or not signed with any of this client's secrets. */
function badResult(
  attempt: Attempt,
  worker: string,
  signature: string | undefined,
): SignatureError {
  // The worker name comes from Redis, unverified: show it only as a short, printable hint.
  const from = /^[\w.@:-]{1,100}$/.test(worker) ? `worker ${worker}` : 'an unnamed worker';
  return new SignatureError(
    signature === undefined
      ? `The result of task '${attempt.name}' (key ${attempt.key}) says it comes from ${from} and is unsigned, but this client has a secret, so it was rejected. Either that worker has no secret (give it the client's: weft worker --secret-file PATH or WEFT_SECRET), or someone wrote the result into Redis.`
      : `The result of task '${attempt.name}' (key ${attempt.key}) says it comes from ${from}, but it is not signed with any of this client's secrets, so it was rejected. Either that worker has another secret (give client and workers the same one; while rotating, give each both), or the result was forged or changed in Redis.`,
  );
}
