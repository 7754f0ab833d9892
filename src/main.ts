// The composition root: the only place that picks memory or Redis stores and wires the
// gateway together. `start(config)` is used by the CLI (src/cli.ts) and by the tests.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Authenticator } from './auth/authenticate.js';
import { MAX_TOKEN_LENGTH } from './auth/extract.js';
import { httpFetchJson, JwksKeyStore, type FetchJson } from './auth/jwks.js';
import { createTokenVerifier, type TokenVerifier } from './auth/verifier.js';
import type { Config } from './config/config.js';
import { Hub } from './core/hub.js';
import { FaultReporter } from './observability/faults.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { PresenceTracker } from './presence/tracker.js';
import { ConnectionRegistry } from './registry/registry.js';
import { Gateway, type SocketData } from './server/gateway.js';
import { registerRoutes } from './server/http.js';
import { PendingSockets } from './server/pending.js';
import { uwsPort } from './server/uws-port.js';
import { loadUws, type UwsInfo, type WebSocket } from './server/uws.js';
import { MemoryBus } from './stores/memory/bus.js';
import { MemoryPresenceStore } from './stores/memory/presence.js';
import { MemoryRegistryStore } from './stores/memory/registry.js';
import { MemoryRevocationStore } from './stores/memory/revocation.js';
import type { Bus, CapStore, PresenceStore, RegistryStore, RevocationStore } from './stores/ports.js';
import { DeploymentCaps } from './core/caps.js';
import { MemoryCapStore } from './stores/memory/caps.js';
import { RedisBus } from './stores/redis/bus.js';
import { RedisCapStore } from './stores/redis/caps.js';
import { createRedis, createRedisClient, isCluster } from './stores/redis/client.js';
import { ClusterRevocationMirror } from './stores/redis/cluster-revocation-mirror.js';
import { RedisPresenceStore } from './stores/redis/presence.js';
import { RedisRegistryStore } from './stores/redis/registry.js';
import { RedisRevocationStore } from './stores/redis/revocation.js';
import { RedisRevocationMirror } from './stores/redis/revocation-mirror.js';

/**
 * This process's soft open-file limit (Linux /proc/self/limits; 65536 elsewhere). Each socket is
 * a descriptor: past the limit accept() fails with EMFILE and uWS's loop spins on the listen socket
 * (measured: 100% CPU at 20k connections with a limit of 20000), so the default caps stay below it:
 * 256 descriptors for Redis, logs and files, the pending-socket bound, and the connections.
 */
export function openFileLimit(): number {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : 65536;
  } catch {
    return 65536;
  }
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly fetchJson?: FetchJson;
}

/** The descriptor budget split between pending sockets and connections, from the configuration and the open-file limit. */
export function socketBudget(config: Pick<Config, 'maxConnections' | 'maxPendingUpgrades'>, fdLimit: number): { maxPending: number; maxConnections: number } {
  const maxPending = config.maxPendingUpgrades > 0 ? config.maxPendingUpgrades : Math.max(16, Math.min(4096, Math.floor(fdLimit / 8)));
  const maxConnections = config.maxConnections > 0 ? config.maxConnections : Math.max(1, fdLimit - 256 - maxPending);
  return { maxPending, maxConnections };
}

export interface Running {
  readonly port: number;
  readonly config: Config;
  readonly uws: UwsInfo;
  readonly gateway: Gateway;
  readonly hub: Hub<WebSocket<SocketData>>;
  readonly metrics: Metrics;
  readonly faults: FaultReporter;
  readonly pending: PendingSockets;
  readonly verifier: TokenVerifier;
  readonly revocations: RevocationStore;
  readonly registryStore: RegistryStore;
  readonly presenceStore: PresenceStore;
  readonly jwks: JwksKeyStore | undefined;
  /** Graceful stop: refuse new upgrades, close sockets (4500), clear this node from the stores. */
  stop(): Promise<void>;
}

interface Stores {
  /** Resolves when the backing store is reachable (at once for memory). */
  ready: Promise<void>;
  revocations: RevocationStore;
  /** The Redis revocation mirror (one per master on a cluster), when that mode is on. */
  mirror?: { readonly isReady: boolean; readonly size: number };
  registry: RegistryStore;
  /** The deployment-wide cap counts, when a deployment cap is configured. */
  caps?: CapStore;
  presence: PresenceStore;
  bus: Bus;
  notReady: () => Promise<string[]>;
  close: () => Promise<void>;
}

const capsOn = (config: Config): boolean => config.deploymentMaxConnectionsPerUser > 0 || config.deploymentMaxConnectionsPerTenant > 0;

function memoryStores(config: Config): Stores {
  return {
    revocations: new MemoryRevocationStore(),
    ...(capsOn(config) ? { caps: new MemoryCapStore(config.deploymentMaxConnectionsPerUser, config.deploymentMaxConnectionsPerTenant, config.registryTtlSec) } : {}),
    registry: new MemoryRegistryStore(config.registryTtlSec),
    presence: new MemoryPresenceStore(config.presenceTtlSec),
    bus: new MemoryBus(),
    ready: Promise.resolve(),
    notReady: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
}

function redisStores(config: Config, url: string, logger: Logger): Stores {
  const cluster = config.redisCluster;
  const redis = createRedisClient({ url, cluster, name: `wsgate:${config.nodeId}` });
  // per-room channels on a cluster are shard channels: one subscriber connection per master
  const sub = createRedisClient({ url, cluster, name: `wsgate:${config.nodeId}:sub`, offlineQueue: true, shardedSubscribers: cluster && config.busChannels === 'room' });
  let lastError = '';
  const onError = (err: Error): void => {
    // ioredis reports every failed reconnect; log each distinct error once.
    if (err.message !== lastError) logger.warn({ err: err.message }, 'redis error');
    lastError = err.message;
  };
  redis.on('error', onError);
  sub.on('error', onError);
  redis.on('ready', () => {
    if (lastError) logger.info('redis connection restored');
    lastError = '';
  });
  const resyncing = (err: unknown): void => logger.warn({ err: String(err) }, 'revocation mirror: resyncing');
  let mirror: RedisRevocationMirror | ClusterRevocationMirror | undefined;
  if (config.revocationMode === 'mirror') {
    if (isCluster(redis)) {
      // client tracking and SCAN are per node: one mirror per master, with connections of its own
      mirror = new ClusterRevocationMirror(redis, url, `wsgate:${config.nodeId}`, config.revokedPrefix, config.revocationTimeoutMs, resyncing);
    } else {
      // a connection of its own: it is put in subscriber mode, and subscribes again itself after a reconnect
      const tracking = createRedis({ url, name: `wsgate:${config.nodeId}:revocations`, autoResubscribe: false });
      tracking.on('error', onError);
      mirror = new RedisRevocationMirror(redis, tracking, config.revokedPrefix, config.revocationTimeoutMs, Date.now, resyncing);
    }
  }
  return {
    revocations: mirror ?? new RedisRevocationStore(redis, config.revokedPrefix, config.revocationTimeoutMs),
    mirror,
    registry: new RedisRegistryStore(redis, config.keyPrefix, config.registryTtlSec),
    presence: new RedisPresenceStore(redis, config.keyPrefix, config.presenceTtlSec),
    bus: new RedisBus(redis, sub, config.keyPrefix, config.busChannels, config.revocationTimeoutMs),
    ...(capsOn(config)
      ? { caps: new RedisCapStore(redis, config.keyPrefix, config.deploymentMaxConnectionsPerUser, config.deploymentMaxConnectionsPerTenant, config.registryTtlSec, config.revocationTimeoutMs) }
      : {}),
    ready: redis.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => redis.once('ready', () => resolve())),
    notReady: async () => {
      if (redis.status !== 'ready') return [`redis ${redis.status}`];
      try {
        await Promise.race([redis.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('ping timeout')), config.revocationTimeoutMs).unref())]);
        return [];
      } catch (e) {
        return [`redis: ${(e as Error).message}`];
      }
    },
    close: async () => {
      mirror?.close();
      sub.disconnect();
      // QUIT waits for an answer: only ask a connected server, else a shutdown during an outage hangs.
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    },
  };
}

export async function start(config: Config, options: StartOptions = {}): Promise<Running> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { uws, info } = loadUws();
  logger.info({ build: info.build, version: info.version, package: info.package }, 'uWebSockets.js loaded');

  const publicKeys = config.jwtPublicKeyFiles.map((f) => readFileSync(f, 'utf8'));
  let jwks: JwksKeyStore | undefined;
  if (config.jwksUrl) {
    jwks = new JwksKeyStore({
      url: config.jwksUrl,
      minRefreshMs: config.jwksRefreshIntervalMs,
      timeoutMs: config.jwksTimeoutMs,
      fetchJson: options.fetchJson ?? httpFetchJson,
      onError: (err) => logger.warn({ err: String(err) }, 'JWKS fetch failed'),
    });
    await jwks.warm();
  }
  const keyStore = jwks;
  const verifier = createTokenVerifier({
    secrets: config.jwtSecrets,
    publicKeys,
    jwks: keyStore ? (kid, alg) => keyStore.getKey(kid, alg) : undefined,
    algorithms: config.jwtAlgorithms,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clockToleranceSec: config.jwtClockToleranceSec,
    cacheSize: config.jwtCacheSize,
    cacheTtlMs: config.jwtCacheTtlMs,
    maxTokenLength: MAX_TOKEN_LENGTH,
    maxTtlSec: config.jwtMaxTtlSec,
  });

  const stores = config.redisUrl ? redisStores(config, config.redisUrl, logger) : memoryStores(config);
  const metrics = new Metrics();
  const faults = new FaultReporter(metrics, logger);
  const authenticator = new Authenticator(
    verifier,
    stores.revocations,
    { query: config.tokenQuery, cookie: config.tokenCookie, allowedOrigins: config.allowedOrigins, failOpen: config.revocationFailOpen },
    metrics,
  );
  const app = uws.App();
  const budget = socketBudget(config, openFileLimit());
  const pending = new PendingSockets(budget.maxPending, config.maxPendingPerAddress);
  const presence = new PresenceTracker(stores.presence, config.nodeId, Math.max(1, Math.floor((config.presenceTtlSec * 1000) / 2 / config.presenceFlushMs)), config.presenceMaxPending);
  const hub = new Hub<WebSocket<SocketData>>(
    {
      nodeId: config.nodeId,
      maxRooms: config.maxRoomsPerConnection,
      maxRoomNameLength: config.maxRoomNameLength,
      maxPublishBytes: config.maxPublishBytes,
      lookupTimeoutMs: config.revocationTimeoutMs,
      tokenExpiringSec: config.tokenExpiringSec,
      expiryGraceMs: config.jwtClockToleranceSec * 1000,
      expirySweepMs: config.expirySweepMs,
      presenceNotify: config.presenceNotify,
      rate: { rate: config.rateLimit, burst: config.rateBurst, rateBytes: config.rateLimitBytes, burstBytes: config.rateBurstBytes },
      frame: { maxDepth: config.maxFrameDepth, maxItems: config.maxFrameItems },
      maxConnections: budget.maxConnections,
      maxConnectionsPerUser: config.maxConnectionsPerUser,
      maxConnectionsPerTenant: config.maxConnectionsPerTenant,
      maxBackpressureBytes: config.maxBackpressureBytes,
    },
    uwsPort<SocketData>(app),
    {
      authenticator,
      registry: (snapshot) => new ConnectionRegistry(stores.registry, config.nodeId, snapshot, config.registryMaxPending),
      presence,
      presenceStore: stores.presence,
      bus: stores.bus,
      metrics,
      faults,
      ...(stores.caps ? { caps: new DeploymentCaps(stores.caps, config.nodeId, Math.max(1, Math.floor((config.registryTtlSec * 1000) / 2 / config.registryFlushMs))) } : {}),
    },
  );
  const gateway = new Gateway({ config, uws, app, authenticator, hub, metrics, faults, pending });
  // A revocation reaches the open sockets that carry the token (mirror mode, embedded store).
  stores.revocations.onRevoked((jti) => {
    try {
      hub.revoked(jti);
    } catch (err) {
      faults.report('revoked', err);
    }
  });
  const startedAt = Date.now();
  registerRoutes({
    app,
    metrics,
    faults,
    health: () => ({
      status: 'ok',
      node: config.nodeId,
      uws: { build: info.build, version: info.version, package: info.package },
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
      connections: hub.size,
      pending: { sockets: pending.size, addresses: pending.addresses, mode: gateway.pendingMode, max: pending.maxTotal, maxPerAddress: pending.maxPerAddress },
      draining: gateway.isDraining,
    }),
    notReady: () => (gateway.isDraining ? Promise.resolve(['draining']) : stores.notReady()),
    answered: (address) => gateway.answered(address),
  });
  // Process health for soak runs and dashboards: event-loop delay sampled every 20 ms.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  metrics.gauges = () => ({
    process_rss_bytes: process.memoryUsage.rss(),
    process_heap_used_bytes: process.memoryUsage().heapUsed,
    process_active_resources: process.getActiveResourcesInfo().length,
    event_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
    event_loop_delay_max_ms: loopDelay.max / 1e6,
    connections: hub.size,
    pending_sockets: pending.size,
    jwt_cache_hits: verifier.cache.hits,
    jwt_cache_lookups: verifier.cache.lookups,
    jwt_cache_hit_ratio: verifier.cache.lookups === 0 ? 0 : verifier.cache.hits / verifier.cache.lookups,
    registry_pending: hub.registry.pendingCount,
    presence_pending_rooms: presence.pendingRooms,
    presence_local_rooms: presence.roomCount,
    expiry_scheduled: hub.scheduled,
    revocation_lookups: stores.revocations.lookups,
    revocation_mirror_ready: stores.mirror?.isReady ? 1 : 0,
    revocation_mirror_entries: stores.mirror?.size ?? 0,
    revocation_round_trips: stores.revocations.roundTrips,
    bus_channels: stores.bus instanceof RedisBus ? stores.bus.channels : 0,
    bus_subscribe_commands: stores.bus instanceof RedisBus ? stores.bus.subscribeCommands : 0,
    caps_round_trips: stores.caps instanceof RedisCapStore ? stores.caps.roundTrips : 0,
    caps_reservations: stores.caps instanceof RedisCapStore ? stores.caps.reservations : 0,
  });

  metrics.onCollect = () => {
    metrics.presenceOverflows = presence.overflows;
    metrics.registryOverflows = hub.registry.overflows;
  };

  // Flush failures are counted and logged once per streak; the writers keep their changes.
  const failing = { registry: false, presence: false, caps: false };
  const guard = (what: 'registry' | 'presence' | 'caps', p: Promise<unknown>): void => {
    p.then(
      () => {
        if (failing[what]) logger.info(`${what} flush recovered`);
        failing[what] = false;
      },
      (err: unknown) => {
        metrics.flushFailures++;
        if (!failing[what]) logger.warn({ err: String(err) }, `${what} flush failed; retrying each interval`);
        failing[what] = true;
      },
    );
  };
  // Timer ticks are contained: a tick that throws is reported and the next one runs as usual.
  const every = (ms: number, where: string, tick: () => void): NodeJS.Timeout =>
    setInterval(() => {
      try {
        tick();
      } catch (err) {
        faults.report(where, err);
      }
    }, ms);
  const timers = [
    every(config.registryFlushMs, 'registry-flush', () => guard('registry', hub.registry.flush())),
    ...(stores.caps ? [every(config.registryFlushMs, 'caps-flush', () => guard('caps', hub.flushCaps()))] : []),
    every(config.presenceFlushMs, 'presence-flush', () => guard('presence', hub.flushPresence())),
    every(config.expirySweepMs, 'sweep', () => hub.sweep()),
  ];

  // Give Redis a moment before taking traffic; if it stays away, serve anyway: upgrades get
  // 503 (or pass, fail-open) and /readyz says why, until it comes back.
  const waited = await Promise.race([stores.ready.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
  if (!waited) logger.warn('redis not reachable after 5 s; serving anyway (upgrades refused with 503 until it is)');
  const port = await gateway.listen();
  logger.info({ port, host: config.host, node: config.nodeId, store: config.redisUrl ? (config.redisCluster ? 'redis-cluster' : 'redis') : 'memory' }, 'wsgate listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      gateway.shutdown();
      loopDelay.disable();
      for (const t of timers) clearInterval(t);
      await hub.forgetNode();
      await stores.bus.close();
      await stores.close();
      logger.info('wsgate stopped');
    })());

  return {
    port,
    config,
    uws: info,
    gateway,
    hub,
    metrics,
    faults,
    pending,
    verifier,
    revocations: stores.revocations,
    registryStore: stores.registry,
    presenceStore: stores.presence,
    jwks,
    stop,
  };
}
