// The one place that builds ioredis clients. Commands fail fast while disconnected
// (no offline queue): an upgrade must get a 503 at once, not wait for a reconnect.
import { Redis } from 'ioredis';

export interface RedisClientOptions {
  readonly url: string;
  readonly name: string;
  /** Subscriber connections keep their offline queue so SUBSCRIBE is replayed on reconnect. */
  readonly offlineQueue?: boolean;
  /** false: the owner subscribes again itself after a reconnect (it must ask CLIENT ID first). */
  readonly autoResubscribe?: boolean;
}

export function createRedis(opts: RedisClientOptions): Redis {
  return new Redis(opts.url, {
    connectionName: opts.name,
    enableOfflineQueue: opts.offlineQueue ?? false,
    autoResubscribe: opts.autoResubscribe ?? true,
    maxRetriesPerRequest: 1,
    // Reconnect forever with capped backoff: the gateway keeps serving and recovers by itself.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    connectTimeout: 2000,
    lazyConnect: false,
  });
}

export function isReady(r: Redis): boolean {
  return r.status === 'ready';
}
