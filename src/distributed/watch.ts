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
import { keys, type WorkerInfo } from './wire.js';

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
  const reader = connect(target, 'weft-dashboard-events');
  // Its own connection, made on the first question: requestExplanation blocks it while it waits.
  let explainer: Redis | undefined;
  /** One question per key at a time: an open page asks every second, a client may take longer. */
  const asking = new Map<string, Promise<Explanation | undefined>>();
  let closing = false;
  let seen = new Set<string>();

  const tick = async (): Promise<void> => {
    const [[, raw]] = ((await redis
      .multi()
      .hgetall(k.workers)
      .set(k.watch, '1', 'PX', 5000)
      .exec()) ?? []) as [[unknown, Record<string, string>]];
    const now = Date.now();
    const live = Object.values(raw)
      .map((v) => JSON.parse(v) as WorkerInfo)
      .filter((w) => now - w.seen < 10_000);
    const names = new Set(live.map((w) => w.name));
    for (const w of live) {
      if (!seen.has(w.name))
        hub.emit({ type: 'joined', worker: w.name, time: now, pid: w.pid, resources: w.resources });
    }
    for (const name of seen)
      if (!names.has(name)) hub.emit({ type: 'left', worker: name, time: now });
    seen = names;
  };
  await tick();
  const timer = setInterval(() => void tick().catch(() => undefined), 2000);
  timer.unref();

  const loop = (async () => {
    let last = '$';
    while (!closing) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await reader.xread('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', k.events, last);
      } catch {
        if (closing) return;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          const json = fields[fields.indexOf('e') + 1];
          if (!json) continue;
          for (const event of JSON.parse(json) as TaskEvent[]) hub.emit(event);
        }
      }
    }
  })();

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
      closing = true;
      clearInterval(timer);
      reader.disconnect();
      explainer?.disconnect();
      await loop.catch(() => undefined);
      hub.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
