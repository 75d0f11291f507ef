/**
 * Watching a running cluster from outside any client (`weft dashboard --address URL`): an event
 * stream fed by the task events that workers and clients publish to Redis while someone watches,
 * plus worker joined/left from the registry.
 */
import type { Redis } from 'ioredis';
import { EventHub, type ExecutorEvents, type TaskEvent } from '../core/events.js';
import type { Explanation } from '../core/explain.js';
import { connect, waitForRedis, type RedisTarget } from './connection.js';
import { effectivePrefix } from './address.js';
import { requestExplanation } from './explain.js';
import type { Signer } from './signing.js';
import { tlsFromEnvironment } from './tls.js';
import { Registry } from './registry.js';
import { StreamReader, fieldOf } from './streams.js';
import { keys } from './wire.js';

export interface ClusterWatch {
  readonly events: ExecutorEvents;
  /**
   * Explains a task by key as `weft explain` does: the client that submitted it answers while it
   * runs, else the explanation stored when it failed (kept a day); undefined when neither knows
   * it. Rejects with `SignatureError` when `signer` is given and the answer is not signed with it.
   */
  explain(key: string): Promise<Explanation | undefined>;
  close(): Promise<void>;
}

/** How long `explain` waits for a client's answer before reading what a failure stored. */
const explainWaitMs = 1_500;

/**
 * Starts watching the cluster at `address`; events flow until `close()`. `signer` checks the
 * explanations that `explain` reads.
 */
export async function watchCluster(
  address: string,
  prefix = 'weft',
  signer?: Signer,
): Promise<ClusterWatch> {
  const effective = effectivePrefix(prefix, address);
  const k = keys(effective);
  const hub = new EventHub();
  const target: RedisTarget = {
    address,
    tls: /^rediss/i.test(address) ? tlsFromEnvironment() : undefined,
  };
  const redis: Redis = connect(target, 'weft-dashboard');
  await waitForRedis(redis, target, 15_000);
  const registry = new Registry(redis, k.workers);
  const events = new StreamReader(connect(target, 'weft-dashboard-events'), k.events, {
    from: '$',
    count: 1000,
  });
  // Its own connection, made on the first question: requestExplanation blocks it while it waits.
  let explainer: Redis | undefined;
  /** One question per key at a time: an open page asks every second, a client may take longer. */
  const asking = new Map<string, Promise<Explanation | undefined>>();

  // Reading the registry also tells workers and clients that someone watches (for 5 s).
  const tick = async (): Promise<void> => {
    const snapshot = await registry.read({ key: k.watch, mode: 'mark', forMs: 5000 });
    for (const event of registry.changes(snapshot)) hub.emit(event);
  };
  await tick();
  const timer = setInterval(() => void tick().catch(() => undefined), 2000);
  timer.unref();

  void events.read((entries) => {
    for (const [, fields] of entries) {
      const json = fieldOf(fields, 'e');
      if (!json) continue;
      for (const event of JSON.parse(json.toString()) as TaskEvent[]) hub.emit(event);
    }
  });

  return {
    events: hub,
    explain(key) {
      let answer = asking.get(key);
      if (!answer) {
        explainer ??= connect(target, 'weft-dashboard-explain');
        answer = requestExplanation(explainer, effective, key, signer, explainWaitMs).finally(() =>
          asking.delete(key),
        );
        asking.set(key, answer);
      }
      return answer;
    },
    async close() {
      clearInterval(timer);
      explainer?.disconnect();
      await events.stop();
      hub.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
