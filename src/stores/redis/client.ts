// The one place that builds ioredis clients. Commands fail fast while disconnected
// (no offline queue): an upgrade must get a 503 at once, not wait for a reconnect.
//
// A deployment on Redis Cluster (WSGATE_REDIS_CLUSTER=true) gets ioredis' Cluster client: the
// stores take either (`RedisClient`), and the few places where the two differ (multi-key commands
// across slots, pub/sub, client tracking) ask `isCluster`.
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** One URL, or (cluster) several seed URLs, comma-separated. */
  readonly url: string;
  readonly name: string;
  /** The URL names a Redis Cluster: a Cluster client (the first reachable seed tells it the rest). */
  readonly cluster?: boolean;
  /** Subscriber connections keep their offline queue so SUBSCRIBE is replayed on reconnect. */
  readonly offlineQueue?: boolean;
  /** false: the owner subscribes again itself after a reconnect (it must ask CLIENT ID first). */
  readonly autoResubscribe?: boolean;
  /** Cluster: SSUBSCRIBE through one subscriber connection per master (ioredis' sharded subscribers). */
  readonly shardedSubscribers?: boolean;
}

// Reconnect forever with capped backoff: the gateway keeps serving and recovers by itself.
const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

function baseOptions(opts: RedisClientOptions): RedisOptions {
  return {
    connectionName: opts.name,
    enableOfflineQueue: opts.offlineQueue ?? false,
    autoResubscribe: opts.autoResubscribe ?? true,
    maxRetriesPerRequest: 1,
    retryStrategy,
    connectTimeout: 2000,
    lazyConnect: false,
  };
}

export function createRedis(opts: RedisClientOptions): Redis {
  return new Redis(opts.url.split(',')[0]!.trim(), baseOptions(opts));
}

/** The seeds of a cluster URL list, and the connection options (credentials, TLS, db) of the first. */
export function seedsOf(url: string): { seeds: ClusterNode[]; options: RedisOptions } {
  const urls = url.split(',').map((u) => new URL(u.trim()));
  const first = urls[0]!;
  const options: RedisOptions = {};
  if (first.username) options.username = decodeURIComponent(first.username);
  if (first.password) options.password = decodeURIComponent(first.password);
  if (first.protocol === 'rediss:') options.tls = {};
  return { seeds: urls.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })), options };
}

/** A standalone connection to one node of a cluster (host:port), with the cluster URL's credentials. */
export function nodeUrl(clusterUrl: string, host: string, port: number): string {
  const u = new URL(clusterUrl.split(',')[0]!.trim());
  u.hostname = host;
  u.port = String(port);
  return u.toString();
}

export function createRedisClient(opts: RedisClientOptions): RedisClient {
  if (!opts.cluster) return createRedis(opts);
  const { seeds, options } = seedsOf(opts.url);
  const { retryStrategy: _perNode, enableOfflineQueue, ...base } = baseOptions(opts);
  return new Cluster(seeds, {
    redisOptions: { ...base, ...options },
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    enableReadyCheck: true,
    scaleReads: 'master',
    // During a failover commands are retried on the new master once ioredis learns of it.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 16,
    // A failover is seen at the next refresh at the latest (MOVED and connection errors refresh at once).
    slotsRefreshInterval: 2000,
    slotsRefreshTimeout: 1000,
    shardedSubscribers: opts.shardedSubscribers ?? false,
  });
}

export function isCluster(r: RedisClient): r is Cluster {
  return r instanceof Cluster;
}

export function isReady(r: RedisClient): boolean {
  return r.status === 'ready';
}
