// The composition root: the only place that picks memory or Redis stores and wires the
// gateway together. `start(config)` is used by the CLI (src/cli.ts) and by the tests.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AdminApi, type AdminPorts } from './admin/api.js';
import { AdminAuth } from './admin/auth.js';
import { NamedLimiter } from './admin/limiter.js';
import { Authenticator } from './auth/authenticate.js';
import { toApiClaims } from './auth/claims.js';
import { MAX_TOKEN_LENGTH } from './auth/extract.js';
import { httpFetchJson, JwksKeyStore, type FetchJson } from './auth/jwks.js';
import { createTokenVerifier, type TokenVerifier, type VerifierOptions } from './auth/verifier.js';
import type { Config } from './config/config.js';
import { FreshShared, VIEW_MIN_INTERVAL_MS } from './core/fresh-shared.js';
import { Hub } from './core/hub.js';
import { FaultReporter } from './observability/faults.js';
import { createLogger, logBindings, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { RefusalLog } from './observability/refusals.js';
import { PresenceTracker } from './presence/tracker.js';
import { ConnectionRegistry } from './registry/registry.js';
import { AdminServer, type AdminServerDeps } from './server/admin.js';
import { Apps } from './server/apps.js';
import { Drain, type DrainPlan, type DrainReport } from './server/drain.js';
import { Gateway, type SocketData } from './server/gateway.js';
import { metricsHandler, registerRoutes } from './server/http.js';
import { resolvePort } from './server/listen.js';
import { PendingSockets } from './server/pending.js';
import { acceptQueueMigrates, loadTls, tlsFiles, type CertificateInfo } from './server/tls.js';
import { uwsPort } from './server/uws-port.js';
import { loadUws, type TemplatedApp, type Uws, type UwsInfo, type WebSocket } from './server/uws.js';
import { MemoryBus } from './stores/memory/bus.js';
import { MemoryPresenceStore } from './stores/memory/presence.js';
import { MemoryRegistryStore } from './stores/memory/registry.js';
import { MemoryRevocationStore } from './stores/memory/revocation.js';
import type { Bus, CapStore, PresenceStore, RegistryStore, RevocationStore } from './stores/ports.js';
import type { HostLink } from './stores/host/link.js';
import { connectHost, HostAdmission, type HostStores } from './stores/host/stores.js';
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

/** This process is one worker of a host (src/worker.ts, started by src/supervisor/). */
export interface WorkerOptions {
  /** the supervisor's in-host store (stores/host/server.ts): a Unix socket */
  readonly hostPath: string;
  /** GET /healthz and /metrics for the whole host, from the supervisor */
  readonly health?: () => Promise<Record<string, unknown>>;
  readonly metricsText?: () => Promise<string>;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly fetchJson?: FetchJson;
  readonly worker?: WorkerOptions;
  /**
   * A drain was asked for through the server API (POST /v1/drain). The process entry decides what
   * follows: cli.ts drains and exits as on SIGTERM, a worker asks its supervisor to drain the host.
   * Without it, this gateway drains (Running.drain) and the process goes on.
   */
  readonly onDrainRequest?: (plan: DrainPlan) => void;
}

/** A connection cap that must count every worker of a host is configured. */
export function capsConfigured(config: Pick<Config, 'maxConnections' | 'maxConnectionsPerUser' | 'maxConnectionsPerTenant'>): boolean {
  return config.maxConnections > 0 || config.maxConnectionsPerUser > 0 || config.maxConnectionsPerTenant > 0;
}

/** The descriptor budget split between pending sockets and connections, from the configuration and the open-file limit. */
export function socketBudget(config: Pick<Config, 'maxConnections' | 'maxPendingUpgrades'>, fdLimit: number): { maxPending: number; maxConnections: number } {
  const maxPending = config.maxPendingUpgrades > 0 ? config.maxPendingUpgrades : Math.max(16, Math.min(4096, Math.floor(fdLimit / 8)));
  const maxConnections = config.maxConnections > 0 ? config.maxConnections : Math.max(1, fdLimit - 256 - maxPending);
  return { maxPending, maxConnections };
}

export interface Running {
  readonly port: number;
  /** the server API's port (docs/API.md); undefined when WSGATE_ADMIN_PORT is not set */
  readonly adminPort: number | undefined;
  readonly config: Config;
  readonly uws: UwsInfo;
  /** the process's logger (its lines carry the node id) */
  readonly logger: Logger;
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
  /** The certificate served to new connections; undefined without TLS. */
  readonly certificate: CertificateInfo | undefined;
  /**
   * SIGHUP: reads the TLS files again and serves the new certificate to new connections; open ones
   * keep theirs. Logged and counted (wsgate_tls_reloads_total); throws when it failed (the previous
   * certificate stays). Without TLS: logs that there is nothing to reload.
   */
  reloadTls(): CertificateInfo | undefined;
  /** A worker's link to its supervisor's in-host store. */
  readonly hostLink: HostLink | undefined;
  /** GET /healthz of this process alone. */
  health(): Record<string, unknown>;
  /**
   * The graceful drain (server/drain.ts): /readyz 503 at once, the listen socket closed after the
   * grace, connections closed with 4500 in batches over the spread, then the node's registry and
   * presence cleared and the stores closed. Defaults: WSGATE_DRAIN_GRACE_SEC and WSGATE_DRAIN_SEC.
   * Called again (or stop() during it): the same drain, hurried when the new plan has no time.
   */
  drain(plan?: Partial<DrainPlan>): Promise<void>;
  /** The last drain's timeline, once it closed every connection. */
  readonly drained: DrainReport | undefined;
  /** Graceful stop without waiting: a drain with no grace and no spread. */
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

/** The embedded store shared by a host's workers, over the link to the supervisor. */
function hostStores(host: HostStores): Stores {
  return {
    revocations: host.revocations,
    registry: host.registry,
    presence: host.presence,
    bus: host.bus,
    ready: Promise.resolve(),
    notReady: () => Promise.resolve(host.link.isOpen ? [] : ['in-host store: link to the supervisor closed']),
    close: () => Promise.resolve(host.link.close()),
  };
}

function redisStores(config: Config, url: string, logger: Logger, metrics: Metrics): Stores {
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
  const observeBatch = (keys: number, seconds: number): void => {
    metrics.revocationBatchSize.observe(keys);
    metrics.revocationBatchSeconds.observe(seconds);
  };
  const resyncing = (err: unknown): void => logger.warn({ err: String(err) }, 'revocation mirror: resyncing');
  let mirror: RedisRevocationMirror | ClusterRevocationMirror | undefined;
  if (config.revocationMode === 'mirror') {
    if (isCluster(redis)) {
      // client tracking and SCAN are per node: one mirror per master, with connections of its own
      mirror = new ClusterRevocationMirror(redis, url, `wsgate:${config.nodeId}`, config.revokedPrefix, config.revocationTimeoutMs, resyncing, config.revokedUserPrefix, observeBatch);
    } else {
      // a connection of its own: it is put in subscriber mode, and subscribes again itself after a reconnect
      const tracking = createRedis({ url, name: `wsgate:${config.nodeId}:revocations`, autoResubscribe: false });
      tracking.on('error', onError);
      mirror = new RedisRevocationMirror(redis, tracking, config.revokedPrefix, config.revocationTimeoutMs, Date.now, resyncing, config.revokedUserPrefix, observeBatch);
    }
  }
  const bus = new RedisBus(redis, sub, config.keyPrefix, config.busChannels, config.revocationTimeoutMs);
  bus.onReconnect = () => logger.warn({ reconnects: bus.reconnects }, 'bus subscriber reconnected: cross-node messages published while it was away were lost (pub/sub is at most once)');
  return {
    revocations: mirror ?? new RedisRevocationStore(redis, config.revokedPrefix, config.revocationTimeoutMs, config.revokedUserPrefix, observeBatch),
    mirror,
    registry: new RedisRegistryStore(redis, config.keyPrefix, config.registryTtlSec),
    presence: new RedisPresenceStore(redis, config.keyPrefix, config.presenceTtlSec),
    bus,
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
  const logger = options.logger ?? createLogger(config.logLevel, undefined, logBindings(config));
  const { uws, info } = loadUws();
  logger.info({ build: info.build, version: info.version, package: info.package, maxHeaderBytes: info.maxHeaderBytes }, 'uWebSockets.js loaded');
  const tls = tlsFiles(config);
  const tlsLoaded = tls === undefined ? undefined : loadTls(tls); // throws TlsError: the files are checked before uWS reads them
  let certificate = tlsLoaded?.certificate;
  if (certificate !== undefined) {
    logger.info({ certificate }, 'TLS certificate loaded');
    if (certificate.notAfterSec * 1000 < Date.now()) logger.warn({ notAfter: certificate.notAfter }, 'the TLS certificate has expired');
    if (acceptQueueMigrates() === false) logger.warn('net.ipv4.tcp_migrate_req is 0: a certificate reload (SIGHUP) resets the connections waiting in the old listen socket\'s accept queue (open connections are kept); set it to 1 (docs/OPERATIONS.md#tls)');
  }

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
  const verifierOptions: VerifierOptions = {
    secrets: config.jwtSecrets,
    publicKeys,
    jwks: keyStore ? (kid, alg) => keyStore.getKey(kid, alg) : undefined,
    algorithms: config.jwtAlgorithms,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clockToleranceSec: config.jwtClockToleranceSec,
    cacheSize: config.jwtCacheSize,
    cacheTtlMs: config.jwtCacheTtlMs,
    cacheMaxBytes: config.jwtCacheMaxBytes,
    maxTokenLength: MAX_TOKEN_LENGTH,
    maxTtlSec: config.jwtMaxTtlSec,
  };
  const verifier = createTokenVerifier(verifierOptions);

  const metrics = new Metrics({ processMetrics: true });
  // A worker always links to its supervisor: the embedded store of the host, or (with Redis) the
  // connection caps counted for the whole host.
  const host = options.worker ? await connectHost(options.worker.hostPath, config.nodeId) : undefined;
  const stores = config.redisUrl ? redisStores(config, config.redisUrl, logger, metrics) : host ? hostStores(host) : memoryStores(config);
  const admission = host && capsConfigured(config) ? new HostAdmission(host.link, config.revocationTimeoutMs) : undefined;
  const faults = new FaultReporter(metrics, logger);
  const refusals = new RefusalLog(logger, config.refusalLogPerSec);
  const authenticator = new Authenticator(
    verifier,
    stores.revocations,
    { query: config.tokenQuery, cookie: config.tokenCookie, allowedOrigins: config.allowedOrigins, failOpen: config.revocationFailOpen },
    metrics,
  );
  const apps = new Apps();
  // With workers, WSGATE_MAX_CONNECTIONS counts the whole host (the supervisor does): each worker
  // keeps only its own descriptor budget.
  const budget = socketBudget(admission ? { ...config, maxConnections: 0 } : config, openFileLimit());
  const pending = new PendingSockets(budget.maxPending, config.maxPendingPerAddress);
  const startedAt = Date.now();
  const observeFlush = (store: 'presence' | 'registry') => (entries: number, seconds: number): void => {
    metrics.flushBatchSize[store].observe(entries);
    metrics.flushSeconds[store].observe(seconds);
  };
  const presence = new PresenceTracker(stores.presence, config.nodeId, Math.max(1, Math.floor((config.presenceTtlSec * 1000) / 2 / config.presenceFlushMs)), config.presenceMaxPending, observeFlush('presence'));
  const hub = new Hub<WebSocket<SocketData>>(
    {
      nodeId: config.nodeId,
      maxRooms: config.maxRoomsPerConnection,
      maxRoomNameLength: config.maxRoomNameLength,
      maxPublishBytes: config.maxPublishBytes,
      lookupTimeoutMs: config.revocationTimeoutMs,
      tokenExpiringSec: config.tokenExpiringSec,
      expiryGraceMs: config.jwtClockToleranceSec * 1000,
      presenceNotify: config.presenceNotify,
      presenceNotifyMaxNames: config.presenceNotifyMaxNames,
      rate: { rate: config.rateLimit, burst: config.rateBurst, rateBytes: config.rateLimitBytes, burstBytes: config.rateBurstBytes },
      users: { roomRate: config.userRoomRate, roomBurst: config.userRoomBurst, presenceWaiting: config.userPresenceWaiting },
      frame: { maxDepth: config.maxFrameDepth, maxItems: config.maxFrameItems },
      maxConnections: budget.maxConnections,
      maxConnectionsPerUser: config.maxConnectionsPerUser,
      maxConnectionsPerTenant: config.maxConnectionsPerTenant,
      maxBackpressureBytes: config.maxBackpressureBytes,
    },
    uwsPort(apps),
    {
      authenticator,
      registry: (snapshot, toEntry) => new ConnectionRegistry(stores.registry, config.nodeId, snapshot, config.registryMaxPending, toEntry, observeFlush('registry')),
      presence,
      presenceStore: stores.presence,
      bus: stores.bus,
      metrics,
      faults,
      info: () => ({ draining: gateway.isDraining, uptimeSec: Math.round((Date.now() - startedAt) / 1000) }),
      admission,
      ...(stores.caps ? { caps: new DeploymentCaps(stores.caps, config.nodeId, Math.max(1, Math.floor((config.registryTtlSec * 1000) / 2 / config.registryFlushMs))) } : {}),
    },
  );
  const health = (): Record<string, unknown> => ({
    status: 'ok',
    node: config.nodeId,
    pid: process.pid,
    uws: { build: info.build, version: info.version, package: info.package },
    uptimeSec: Math.round((Date.now() - startedAt) / 1000),
    connections: hub.size,
    pending: { sockets: pending.size, addresses: pending.addresses, mode: gateway.pendingMode, max: pending.maxTotal, maxPerAddress: pending.maxPerAddress },
    draining: gateway.isDraining,
    ...(certificate !== undefined ? { tls: { notAfter: certificate.notAfter, fingerprint256: certificate.fingerprint256, listeners: apps.size } } : {}),
  });
  // The metrics text on either listener. A render costs ~2 ms: concurrent scrapes share one, at most
  // 4 a second (core/fresh-shared.ts). A worker's host view is shared and rate-limited already
  // (worker.ts, and the supervisor's collections).
  const rendered = new FreshShared(() => metrics.render(), VIEW_MIN_INTERVAL_MS);
  const metricsText = options.worker?.metricsText ?? (() => rendered.get());
  const metricsRoute = metricsHandler(metrics, faults, config.metricsAccess === 'token' ? config.metricsToken : undefined, metricsText);
  // The routes are registered on each app the gateway makes (a new one per TLS reload). A worker
  // answers /healthz and /metrics for the whole host (its supervisor gathers every worker's).
  const routes = (app: TemplatedApp): void =>
    registerRoutes({
      app,
      metrics,
      metricsAccess: { mode: config.metricsAccess, token: config.metricsToken },
      faults,
      health: options.worker?.health ?? health,
      metricsText,
      notReady: () => (gateway.isDraining ? Promise.resolve(['draining']) : stores.notReady()),
      answered: (address) => gateway.answered(address),
    });
  const gateway: Gateway = new Gateway({ config, uws, apps, authenticator, hub, metrics, faults, refusals, pending, routes, tls: tlsLoaded?.options });
  // A revocation reaches the open sockets that carry the token (mirror mode, embedded store).
  stores.revocations.onRevoked((jti) => {
    try {
      hub.revoked(jti);
    } catch (err) {
      faults.report('revoked', err);
    }
  });
  // A user revocation reaches the user's open sockets the same way.
  stores.revocations.onUserRevoked((tenantId, sub, before) => {
    try {
      hub.revokedUser(tenantId, sub, before);
    } catch (err) {
      faults.report('revoked-user', err);
    }
  });
  // bound below, once the drain exists; a request before that is kept and carried out then
  let earlyDrain: DrainPlan | undefined;
  let requestDrain: (plan: DrainPlan) => void = (plan) => (earlyDrain = plan);
  const drainRequested = (asked: { graceSec?: number; drainSec?: number }): { node: string; graceSec: number; drainSec: number } => {
    const plan: DrainPlan = { graceSec: asked.graceSec ?? config.drainGraceSec, spreadSec: asked.drainSec ?? config.drainSec };
    logger.info({ ...plan }, 'drain asked through the server API');
    // After the 202 is written (the route answers in this turn's microtasks): a drain with no grace
    // closes the listeners (and with one process ends it) at once, which took the answer with it
    // (red team: `{"graceSec":0,"drainSec":0}` got none).
    setImmediate(() => requestDrain(plan));
    return { node: config.nodeId, graceSec: plan.graceSec, drainSec: plan.spreadSec };
  };
  const admin =
    config.adminPort === undefined
      ? undefined
      : adminServer(config, { uws, hub, stores, metrics, faults, logger, verifierOptions, drain: drainRequested, metricsRoute: (res, req, method) => metricsRoute(res, req, () => undefined, method) });
  // Process health for soak runs and dashboards: event-loop delay sampled every 20 ms.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  metrics.info('info', 'This process: its node id, uWS build and version, and whether it serves TLS (value 1).', { node: config.nodeId, uws_build: info.build, uws_version: info.version, tls: tls === undefined ? 'false' : 'true' });
  const gauges: Array<[string, string, () => number]> = [
    ['process_rss_bytes', 'Resident set size.', () => process.memoryUsage.rss()],
    ['process_heap_used_bytes', 'V8 heap used.', () => process.memoryUsage().heapUsed],
    ['process_active_resources', 'Active libuv resources (handles, requests).', () => process.getActiveResourcesInfo().length],
    ['event_loop_delay_p99_ms', 'Event-loop delay, 99th percentile since start (sampled every 20 ms).', () => loopDelay.percentile(99) / 1e6],
    ['event_loop_delay_max_ms', 'Event-loop delay, largest since start.', () => loopDelay.max / 1e6],
    ['connections', 'Open WebSocket sessions.', () => hub.size],
    ['pending_sockets', 'Sockets that have not completed an upgrade (the pending-socket bound counts them).', () => pending.size],
    ['jwt_cache_hits', 'Verified-token cache hits since start.', () => verifier.cache.hits],
    ['jwt_cache_lookups', 'Verified-token cache lookups since start.', () => verifier.cache.lookups],
    ['jwt_cache_hit_ratio', 'Verified-token cache hits / lookups since start.', () => (verifier.cache.lookups === 0 ? 0 : verifier.cache.hits / verifier.cache.lookups)],
    ['registry_pending', 'Connection-registry changes waiting for the next flush.', () => hub.registry.pendingCount],
    ['presence_pending_rooms', 'Rooms with presence changes waiting for the next flush.', () => presence.pendingRooms],
    ['presence_local_rooms', 'Rooms with a member on this node.', () => presence.roomCount],
    ['revocation_lookups', 'Revocation checks since start.', () => stores.revocations.lookups],
    ['revocation_mirror_ready', '1 when the revocation mirror is in sync with Redis (mirror mode), else 0.', () => (stores.mirror?.isReady ? 1 : 0)],
    ['revocation_mirror_entries', 'Revoked token ids in the local mirror.', () => stores.mirror?.size ?? 0],
    ['revocation_round_trips', 'Revocation lookup batches sent to Redis since start.', () => stores.revocations.roundTrips],
    ['bus_channels', 'Room channels this node is subscribed to (WSGATE_BUS_CHANNELS=room).', () => (stores.bus instanceof RedisBus ? stores.bus.channels : 0)],
    ['bus_reconnects', 'Times the bus subscriber reconnected since start: cross-node payloads published while it was away were lost (pub/sub is at most once).', () => (stores.bus instanceof RedisBus ? stores.bus.reconnects : 0)],
    ['bus_subscribe_commands', 'SUBSCRIBE/UNSUBSCRIBE commands sent since start (room channels).', () => (stores.bus instanceof RedisBus ? stores.bus.subscribeCommands : 0)],
    ['caps_round_trips', 'Deployment-cap round trips to Redis since start.', () => (stores.caps instanceof RedisCapStore ? stores.caps.roundTrips : 0)],
    ['caps_reservations', 'Deployment-cap reservations asked since start.', () => (stores.caps instanceof RedisCapStore ? stores.caps.reservations : 0)],
    ['uws_apps', 'uWS apps holding sockets: 1, more for a while after a TLS reload (the old ones keep their connections).', () => apps.size],
  ];
  if (tls !== undefined) gauges.push(['tls_certificate_not_after_seconds', 'Expiry of the TLS certificate served to new connections, in seconds since the epoch.', () => certificate?.notAfterSec ?? 0]);
  gauges.push(['draining', '1 while the node drains (SIGTERM): /readyz answers 503 and connections are being closed with 4500.', () => (gateway.isDraining ? 1 : 0)]);
  for (const [name, help, read] of gauges) metrics.gauge(name, help, read);

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
  const adminPort = await admin?.listen();
  // A worker listens on the port its supervisor chose, shared with the other workers (SO_REUSEPORT).
  let port: number;
  try {
    // shared also with TLS: a certificate reload listens a second time on the port (server/gateway.ts reloadTls)
    port = await gateway.listen(options.worker ? config.port : await resolvePort(config.host, config.port), options.worker !== undefined || tls !== undefined);
  } catch (err) {
    loopDelay.disable();
    for (const t of timers) clearInterval(t);
    admin?.close();
    await stores.bus.close();
    await stores.close();
    throw err;
  }
  // A worker's line does not say "listening": the supervisor says it once, when every worker is.
  const store = config.redisUrl ? (config.redisCluster ? 'redis-cluster' : 'redis') : host ? 'host' : 'memory';
  if (options.worker) logger.info({ port, store }, 'worker serving'); // its logger names the node
  else logger.info({ port, host: config.host, node: config.nodeId, store, tls: tls !== undefined, ...(admin ? { adminPort, adminHost: config.adminHost } : {}) }, 'wsgate listening');
  if (admin && !isLoopback(config.adminHost)) logger.warn({ adminHost: config.adminHost }, 'the server API listens beyond loopback: it speaks plain HTTP, keep it on a private network (docs/API.md)');

  const reloadTls = (): CertificateInfo | undefined => {
    if (tls === undefined) {
      logger.info('no TLS configured: nothing to reload');
      return undefined;
    }
    try {
      const next = loadTls(tls);
      gateway.reloadTls(next.options);
      certificate = next.certificate;
      metrics.count(metrics.tlsReloads, 'ok');
      logger.info({ certificate, listeners: apps.size }, 'TLS certificate reloaded');
      return certificate;
    } catch (err) {
      metrics.count(metrics.tlsReloads, 'failed');
      logger.error({ err: (err as Error).message }, 'TLS certificate reload failed; new connections still get the previous certificate');
      throw err;
    }
  };

  let stopping: Promise<void> | undefined;
  let drain: Drain | undefined;
  let drained: DrainReport | undefined;
  const finish = async (): Promise<void> => {
    // The last presence changes (every connection just left): their leave notifications go out
    // before the node's entries are removed. Bounded: a store that is gone does not hold the exit.
    await Promise.race([hub.flushPresence().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    admin?.close();
    loopDelay.disable();
    for (const t of timers) clearInterval(t);
    await hub.forgetNode();
    await stores.bus.close();
    await stores.close();
    logger.info('wsgate stopped');
  };
  const drainWith = (plan: DrainPlan): Promise<void> => {
    if (stopping) {
      if (plan.graceSec === 0 && plan.spreadSec === 0) drain?.hurry();
      return stopping;
    }
    const d = (drain = new Drain(gateway, hub, (msg, fields) => logger.info(fields, msg)));
    stopping = d.run(plan).then(
      (report) => {
        drained = report;
        return finish();
      },
      (err: unknown) => {
        faults.report('drain', err);
        gateway.shutdown();
        return finish();
      },
    );
    return stopping;
  };

  requestDrain = options.onDrainRequest ?? ((plan) => void drainWith(plan));
  if (earlyDrain !== undefined) requestDrain(earlyDrain);

  return {
    port,
    adminPort,
    config,
    uws: info,
    logger,
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
    get certificate() {
      return certificate;
    },
    reloadTls,
    hostLink: host?.link,
    health,
    drain: (plan) => drainWith({ graceSec: plan?.graceSec ?? config.drainGraceSec, spreadSec: plan?.spreadSec ?? config.drainSec }),
    get drained() {
      return drained;
    },
    stop: () => drainWith({ graceSec: 0, spreadSec: 0 }),
  };
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

interface AdminParts {
  readonly uws: Uws;
  readonly hub: Hub<WebSocket<SocketData>>;
  readonly stores: Stores;
  readonly metrics: Metrics;
  readonly faults: FaultReporter;
  readonly logger: Logger;
  readonly verifierOptions: VerifierOptions;
  readonly drain: AdminPorts['drain'];
  readonly metricsRoute: AdminServerDeps['metricsRoute'];
}

/** The server API (docs/API.md) on its own listener: keys, the JWT scope, rate limits, routes. */
function adminServer(config: Config, p: AdminParts): AdminServer {
  const scope = config.adminJwtScope;
  const jwt = scope === undefined ? undefined : createTokenVerifier({ ...p.verifierOptions, cacheSize: Math.min(p.verifierOptions.cacheSize, 1000) }, (payload, nowSec, rules) => toApiClaims(payload, nowSec, rules, scope), ['sub', 'exp']);
  const api = new AdminApi(
    {
      command: (c) => p.hub.command(c),
      publish: (room, bin, json) => p.hub.fanOut.toRoom(room, bin, json, undefined),
      presence: p.stores.presence,
      revocations: p.stores.revocations,
      metrics: p.metrics,
      now: Date.now,
      drain: p.drain,
    },
    {
      maxRoomNameLength: config.maxRoomNameLength,
      maxPublishBytes: config.maxPublishBytes,
      frame: { maxDepth: config.maxFrameDepth, maxItems: config.maxFrameItems },
      timeoutMs: config.revocationTimeoutMs,
      defaultTtlSec: config.jwtMaxTtlSec + config.jwtClockToleranceSec,
    },
  );
  return new AdminServer({
    uws: p.uws,
    host: config.adminHost,
    port: config.adminPort!,
    api,
    auth: new AdminAuth(config.adminKeys, jwt),
    limiter: new NamedLimiter(config.adminRateLimit, config.adminRateBurst),
    failures: new NamedLimiter(config.adminRateLimit, config.adminRateBurst),
    metrics: p.metrics,
    faults: p.faults,
    logger: p.logger,
    metricsRoute: p.metricsRoute,
  });
}
