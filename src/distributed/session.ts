/**
 * A client's session with the cluster's Redis: the heartbeat and presence that tell workers the
 * client is still there (see P:client in wire.ts), the epoch that tells the client whether Redis
 * still holds the cluster's state, and the warnings while Redis cannot be reached.
 *
 * Losses are reported, never guessed at: `lost` is called when Redis answers again without the
 * state this client's tasks were in (epoch missing or changed), or without this client's
 * heartbeat (it was cut off longer than the heartbeat lasts, so workers dropped its work).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisLostError } from '../core/errors.js';
import { connect, isCluster, type RedisTarget } from './connection.js';
import { heartbeatMs, heartbeatTtlMs, keys, presenceGraceMs, redactAddress } from './wire.js';

/** Redis unreachable this long: warn (stderr and a `warning` event). */
export const warnAfterMs = 5000;

export interface ClientSessionOptions {
  /** The client's command connection; its drops and reconnects are what the session watches. */
  redis: Redis;
  target: RedisTarget;
  prefix: string;
  clientId: string;
  warn(message: string): void;
  /** Redis answered without what this client's sent tasks need; `error` says what and why. */
  lost(error: RedisLostError): void;
  /** Tasks sent and not finished, for messages. */
  pending(): number;
}

export class ClientSession {
  readonly #o: ClientSessionOptions;
  readonly #keys: ReturnType<typeof keys>;
  /** Subscribed to P:client:<id> for as long as this client lives: its presence. */
  #presence: Redis | undefined;
  #epoch = '';
  #timer: NodeJS.Timeout | undefined;
  #lastBeat = 0;
  #beating = false;
  #downSince: number | undefined;
  #warned = false;
  #lastError = '';
  #closed = false;
  /** Said goodbye: no more heartbeats (one would bring the client back to life). */
  #leaving = false;
  readonly #onClose = (): void => {
    if (!this.#closed) this.#downSince ??= Date.now();
  };
  readonly #onError = (error: unknown): void => {
    this.#lastError = error instanceof Error ? error.message : String(error);
  };
  readonly #onReady = (): void => this.#back();

  constructor(options: ClientSessionOptions) {
    this.#o = options;
    this.#keys = keys(options.prefix);
  }

  get address(): string {
    return redactAddress(this.#o.target.address);
  }

  /** Milliseconds Redis has been unreachable, or 0 while it answers. */
  get downForMs(): number {
    return this.#downSince === undefined ? 0 : Date.now() - this.#downSince;
  }

  /** Joins: presence, epoch and first heartbeat, before any task is sent. */
  async start(): Promise<void> {
    const { redis, target, clientId } = this.#o;
    if (!isCluster(target)) {
      this.#presence = connect(target, `weft-client-${clientId}-presence`);
      await this.#presence.subscribe(this.#keys.client(clientId));
    }
    this.#epoch = await this.#adoptEpoch();
    await redis.set(this.#keys.client(clientId), this.#epoch, 'PX', heartbeatTtlMs);
    this.#lastBeat = Date.now();
    redis.on('close', this.#onClose);
    redis.on('error', this.#onError);
    redis.on('ready', this.#onReady);
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
  }

  /** Keeps the process alive while a shutdown waits on Redis (the timer is what ends the wait). */
  hold(): void {
    this.#timer?.ref();
  }

  /**
   * Tells the workers this client is gone (heartbeat deleted, `gone` published), so that they
   * skip its queued tasks and abort its running ones at once. Only called while Redis answers.
   */
  async goodbye(): Promise<void> {
    const { redis, clientId } = this.#o;
    this.#leaving = true;
    await redis
      .multi()
      .del(this.#keys.client(clientId))
      .publish(this.#keys.control, `gone ${clientId}`)
      .exec();
  }

  /** Stops the heartbeat and the presence connection. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    const { redis } = this.#o;
    redis.off('close', this.#onClose);
    redis.off('error', this.#onError);
    redis.off('ready', this.#onReady);
    this.#presence?.disconnect();
    this.#presence = undefined;
  }

  #tick(): void {
    if (this.#closed) return;
    const { redis } = this.#o;
    if (redis.status !== 'ready') {
      this.#downSince ??= Date.now();
      if (!this.#warned && this.downForMs >= warnAfterMs) {
        this.#warned = true;
        const pending = this.#o.pending();
        const tasks =
          pending === 0
            ? 'weft keeps retrying'
            : `${pending} task(s) sent to the cluster stay pending while weft keeps retrying; they fail if Redis comes back without their state`;
        this.#o.warn(
          `Redis at ${this.address} has been unreachable for ${Math.floor(this.downForMs / 1000)} s${this.#lastError ? ` (${this.#lastError})` : ''}; ${tasks}.`,
        );
      }
      return;
    }
    if (!this.#leaving && Date.now() - this.#lastBeat >= heartbeatMs) void this.#beat();
  }

  /** Redis answers again: say so if we warned, then check what it still holds. */
  #back(): void {
    if (this.#closed || this.#downSince === undefined) return;
    const downFor = this.downForMs;
    this.#downSince = undefined;
    if (this.#warned) {
      this.#warned = false;
      this.#o.warn(`Redis at ${this.address} is back after ${(downFor / 1000).toFixed(1)} s.`);
    }
    void this.#beat();
  }

  /** One heartbeat, which also checks the epoch (a flush is seen without any reconnect). */
  async #beat(): Promise<void> {
    if (this.#beating || this.#closed || this.#leaving) return;
    this.#beating = true;
    const { redis, clientId } = this.#o;
    const at = Date.now();
    try {
      const replies = await redis
        .multi()
        .get(this.#keys.epoch)
        .set(this.#keys.client(clientId), this.#epoch, 'PX', heartbeatTtlMs, 'GET')
        .exec();
      if (this.#closed || !replies) return;
      const epoch = replies[0]?.[1] as string | null;
      const previous = replies[1]?.[1] as string | null;
      const gap = ((at - this.#lastBeat) / 1000).toFixed(0);
      this.#lastBeat = at;
      if (epoch !== this.#epoch) {
        this.#epoch = await this.#adoptEpoch();
        await redis.set(this.#keys.client(clientId), this.#epoch, 'PX', heartbeatTtlMs);
        this.#o.lost(
          new RedisLostError(
            `Redis at ${this.address} came back without the cluster's state (it was restarted without persistence, or flushed), so the jobs and results of tasks sent to it are gone.`,
            'state-lost',
          ),
        );
      } else if (previous === null) {
        this.#o.lost(
          new RedisLostError(
            `The workers treated this client as gone and dropped its tasks: its heartbeat in Redis at ${this.address} was missing after ${gap} s (it lasts ${heartbeatTtlMs / 1000} s; Redis was unreachable, this process was stopped or blocked, or its connections to Redis dropped for over ${presenceGraceMs / 1000} s).`,
            'session-expired',
          ),
        );
      }
    } catch {
      // Redis went away mid-beat: the next reconnect beats again.
    } finally {
      this.#beating = false;
    }
  }

  /** The cluster's epoch, created when this is the first client of a fresh Redis. */
  async #adoptEpoch(): Promise<string> {
    const replies = await this.#o.redis
      .multi()
      .set(this.#keys.epoch, randomUUID(), 'NX')
      .get(this.#keys.epoch)
      .exec();
    return (replies?.[1]?.[1] as string | null) ?? '';
  }
}
