/**
 * Watching a running cluster from outside any client (`weft dashboard --address URL`): an event
 * stream fed by the task events that workers and clients publish to Redis while someone watches,
 * plus worker joined/left from the registry.
 */
import type { Redis } from 'ioredis';
import { EventHub, type ExecutorEvents, type TaskEvent } from '../core/events.js';
import { connect, waitForRedis, type RedisTarget } from './connection.js';
import { effectivePrefix } from './address.js';
import { tlsFromEnvironment } from './tls.js';
import { keys, type WorkerInfo } from './wire.js';

export interface ClusterWatch {
  readonly events: ExecutorEvents;
  close(): Promise<void>;
}

/** Starts watching the cluster at `address`; events flow until `close()`. */
export async function watchCluster(address: string, prefix = 'weft'): Promise<ClusterWatch> {
  const k = keys(effectivePrefix(prefix, address));
  const hub = new EventHub();
  const target: RedisTarget = {
    address,
    tls: /^rediss/i.test(address) ? tlsFromEnvironment() : undefined,
  };
  const redis: Redis = connect(target, 'weft-dashboard');
  await waitForRedis(redis, target, 15_000);
  const reader = connect(target, 'weft-dashboard-events');
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
    async close() {
      closing = true;
      clearInterval(timer);
      reader.disconnect();
      await loop.catch(() => undefined);
      hub.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
