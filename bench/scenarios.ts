// The bench scenarios. Each runs its phases on a Generator against one target and returns the
// figures of that run; bench/run.ts runs it against wsgate and the baselines in one invocation.
import autocannon from 'autocannon';
import type { Baseline } from './lib/dialects.js';
import type { ProcSample } from './lib/procs.js';
import type { BenchRedis } from './lib/bench-redis.js';
import { summarize, type Generator, type LatencySummary, type Merged } from './lib/generator.js';
import type { RunningTarget } from './lib/targets.js';

export interface BenchOptions {
  readonly scenario: ScenarioName;
  readonly conns: number;
  readonly workers: number;
  readonly durationSec: number;
  /** open-loop rate (ops/s over all workers); 0 = closed loop, as fast as the target answers */
  readonly rate: number;
  readonly concurrency: number;
  readonly window: number;
  readonly rooms: number;
  readonly publishers: number;
  readonly payloadBytes: number;
  readonly revokedShare: number;
  readonly encoding: 'json' | 'msgpack';
  readonly reuseTokens: boolean;
  /** fanout: closed loop, `window` publishes in flight per publisher (deliveries/s at saturation) */
  readonly saturate: boolean;
  /** hold: seconds between the last connection joining and the settled RSS reading */
  readonly settleSec: number;
  /** connections opened and closed (tokens of their own) before the scenario, so it runs on a JIT-warm server */
  readonly warmup: number;
  /** wsgate processes on one Redis, each on its own port; connections and rooms spread over them */
  readonly gatewayProcs: number;
  /**
   * WSGATE_WORKERS of each wsgate run: wsgate runs once per count (the first is the subject, the
   * others are reported as scaling runs); bare uWS runs as many processes on one port as the first
   */
  readonly gatewayWorkers: readonly number[];
  /** drain: WSGATE_DRAIN_SEC of the gateway (each worker's connections closed over this many seconds) */
  readonly drainSec: number;
  /** extra baselines; bare uWS always runs */
  readonly baselines: readonly Baseline[];
  readonly store: 'redis' | 'redis-cluster' | 'memory';
  /** wsgate and bare uWS over TLS (a throw-away certificate with this key), wsgate in plain text as a baseline */
  readonly tls: 'ec' | 'rsa' | undefined;
  /**
   * Which wsgate process a connection goes to (--gateway-procs > 1): `mixed`, every room has members
   * on every process (each publish crosses processes); `rooms`, each room's members are all on one
   * process (room r on process r mod N: the rooms are spread over the processes).
   */
  readonly placement: 'mixed' | 'rooms';
  /** extra environment for the wsgate processes (--gateway-env K=V,...) */
  readonly gatewayEnv: Readonly<Record<string, string>>;
  readonly outDir: string;
  readonly quiet: boolean;
}

export interface Headline {
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

export interface ScenarioResult {
  headline: Headline;
  /** ops/s achieved, for the generator-headroom check; undefined where it has no meaning */
  throughput: number | undefined;
  metrics: Record<string, number>;
  latency: Record<string, LatencySummary>;
  errors: Record<string, number>;
  /** generator CPU per worker (share of one core) in the measured phase */
  workerCpu: number[];
  /** per-second counts of the measured phase (drain: closed, closed4500, reconnected, failed) */
  series?: Record<string, number[]>;
}

export interface ScenarioContext {
  readonly gen: Generator;
  readonly target: RunningTarget;
  readonly opts: BenchOptions;
  readonly redis: BenchRedis | undefined;
  readonly secret: string;
  readonly jtiPrefix: string;
  /** Tells the progress display which phase runs. */
  phase(name: string): void;
  /** The server's RSS now (bytes), summed over its processes and their descendants. */
  rss(): number;
  /** The server's CPU time now (ms), summed over its processes and their descendants. */
  cpuMs(): number;
  /** The server's processes now, summed. */
  sample(): ProcSample;
  /** The Redis server's CPU time now (ms); undefined when this target uses no Redis. */
  redisCpuMs(): number | undefined;
  /** A gauge or counter of wsgate's /metrics (`wsgate_<name>`), summed over its processes; undefined for the baselines or when absent. */
  metric(name: string): Promise<number | undefined>;
}

export type ScenarioName = 'connect-storm' | 'reconnect-storm' | 'fanout' | 'echo' | 'refresh-storm' | 'hold' | 'revocation' | 'http' | 'drain';
export const SCENARIOS: readonly ScenarioName[] = ['connect-storm', 'reconnect-storm', 'fanout', 'echo', 'refresh-storm', 'hold', 'revocation', 'http', 'drain'];

const perSec = (n: number, ms: number): number => (ms > 0 ? (n * 1000) / ms : 0);
const perWorker = (total: number, workers: number): number => total / workers;

async function connect(ctx: ScenarioContext): Promise<Merged> {
  ctx.phase('connect');
  const { opts } = ctx;
  return ctx.gen.run({ cmd: 'connect', rate: perWorker(opts.rate, opts.workers), concurrency: Math.max(1, Math.ceil(opts.concurrency / opts.workers)), timeoutMs: 10_000 });
}

async function close(ctx: ScenarioContext): Promise<void> {
  ctx.phase('close');
  await ctx.gen.run({ cmd: 'close' });
}

function result(headline: Headline, m: Merged, throughput: number | undefined, metrics: Record<string, number>, latency: Record<string, LatencySummary>): ScenarioResult {
  return { headline, throughput, metrics, latency, errors: m.errors, workerCpu: m.workerCpu };
}

/** A point in time with the server's and Redis's CPU then. */
interface Mark {
  t: number;
  cpuMs: number;
  redisCpuMs: number;
}
const mark = (ctx: ScenarioContext): Mark => ({ t: performance.now(), cpuMs: ctx.cpuMs(), redisCpuMs: ctx.redisCpuMs() ?? 0 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU shares (of one core) of the idle server (its timers, flushes) and of Redis, measured for 1 s. */
interface Idle {
  server: number;
  redis: number;
}
async function idle(ctx: ScenarioContext): Promise<Idle> {
  ctx.phase('idle');
  const a = mark(ctx);
  await sleep(1000);
  const b = mark(ctx);
  return { server: (b.cpuMs - a.cpuMs) / (b.t - a.t), redis: (b.redisCpuMs - a.redisCpuMs) / (b.t - a.t) };
}

/** CPU ms between two marks beyond what the idle process would have used (never below 0). */
const busy = (a: Mark, b: Mark, idleShare: number, key: 'cpuMs' | 'redisCpuMs' = 'cpuMs'): number => Math.max(0, b[key] - a[key] - idleShare * (b.t - a.t));

/**
 * Waits for the work a server defers past the close of its sockets, so the lifecycle figure
 * includes it: wsgate batches registry writes (every WSGATE_REGISTRY_FLUSH_MS, 1 s): until its
 * `registry_pending` gauge reads 0 (at most 2.5 s; a full interval when the gauge is absent).
 */
async function deferredWork(ctx: ScenarioContext): Promise<void> {
  if (ctx.target.target === 'wsgate') {
    const end = performance.now() + 2500;
    for (;;) {
      const pending = await ctx.metric('registry_pending');
      if (pending === undefined) {
        await sleep(1100);
        break;
      }
      if (pending === 0 || performance.now() > end) break;
      await sleep(100);
    }
  }
  await sleep(200); // the replies of the last flush
}

/**
 * Server CPU per connection lifecycle (upgrade + open + close): the CPU of the connect and close
 * phases (with the deferred work) less the idle server's, divided by the connections accepted.
 */
function lifecycle(ctx: ScenarioContext, a: Mark, b: Mark, c: Mark, idleShares: Idle, conns: number): Record<string, number> {
  if (conns === 0) return {};
  const up = busy(a, b, idleShares.server);
  const down = busy(b, c, idleShares.server);
  return {
    cpuUsPerConn: ((up + down) * 1000) / conns,
    cpuUsPerConnUpgrade: (up * 1000) / conns,
    cpuUsPerConnClose: (down * 1000) / conns,
    cpuShareIdleServer: idleShares.server,
    ...(ctx.redis ? { redisCpuUsPerConn: (busy(a, c, idleShares.redis, 'redisCpuMs') * 1000) / conns } : {}),
  };
}

async function connectStorm(ctx: ScenarioContext): Promise<ScenarioResult> {
  const idleShares = await idle(ctx);
  const calls0 = (await ctx.redis?.totalCalls()) ?? 0;
  const rt0 = (await ctx.metric('revocation_round_trips')) ?? 0;
  const a = mark(ctx);
  const m = await connect(ctx);
  const b = mark(ctx);
  await close(ctx);
  await deferredWork(ctx);
  const c = mark(ctx);
  const calls = ((await ctx.redis?.totalCalls()) ?? 0) - calls0;
  const rt = ((await ctx.metric('revocation_round_trips')) ?? 0) - rt0;
  const rate = perSec(m.ok, m.activeMs);
  const attempts = ctx.opts.conns;
  return result({ metric: 'upgrades/s', value: rate, unit: '/s', higherIsBetter: true }, m, rate, {
    accepted: m.ok,
    refused: Object.values(m.errors).reduce((x, y) => x + y, 0),
    redisCommandsPerUpgrade: ctx.redis ? calls / attempts : 0,
    redisRoundTripsPerUpgrade: ctx.target.target === 'wsgate' ? rt / attempts : ctx.redis ? calls / attempts : 0,
    ...lifecycle(ctx, a, b, c, idleShares, m.ok),
  }, { handshake: summarize(m.hist) });
}

async function reconnectStorm(ctx: ScenarioContext): Promise<ScenarioResult> {
  await connect(ctx); // first round fills the verifier cache
  await close(ctx);
  await deferredWork(ctx);
  const idleShares = await idle(ctx);
  const hits0 = (await ctx.metric('jwt_cache_hits')) ?? 0;
  const look0 = (await ctx.metric('jwt_cache_lookups')) ?? 0;
  const a = mark(ctx);
  const m = await connect(ctx);
  const b = mark(ctx);
  await close(ctx);
  await deferredWork(ctx);
  const c = mark(ctx);
  const hits = ((await ctx.metric('jwt_cache_hits')) ?? 0) - hits0;
  const lookups = ((await ctx.metric('jwt_cache_lookups')) ?? 0) - look0;
  const rate = perSec(m.ok, m.activeMs);
  return result({ metric: 'upgrades/s (same tokens)', value: rate, unit: '/s', higherIsBetter: true }, m, rate, {
    accepted: m.ok,
    verifierCacheHitRatio: lookups > 0 ? hits / lookups : 0,
    ...lifecycle(ctx, a, b, c, idleShares, m.ok),
  }, { handshake: summarize(m.hist) });
}

async function fanout(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  await connect(ctx);
  ctx.phase('join');
  await ctx.gen.run({ cmd: 'join' });
  ctx.phase('fanout');
  const pubsPerWorker = Math.max(1, Math.round(opts.publishers / opts.workers));
  // Paced unless --saturate: deliveries = rate x room size, latency from the scheduled send time.
  const rate = opts.saturate ? 0 : opts.rate > 0 ? opts.rate : 1000 * opts.publishers;
  const a = mark(ctx);
  const m = await ctx.gen.run({ cmd: 'fanout', durationMs: opts.durationSec * 1000, publishers: pubsPerWorker, rate: perWorker(rate, opts.workers), window: opts.window, payloadBytes: opts.payloadBytes });
  const b = mark(ctx);
  const deliveries = perSec(m.deliveries, m.activeMs);
  const delivery = summarize(m.deliveryHist);
  await close(ctx);
  return result({ metric: 'deliveries/s', value: deliveries, unit: '/s', higherIsBetter: true }, m, deliveries, {
    publishes: m.ok,
    deliveries: m.deliveries,
    deliveriesPerSec: deliveries,
    closedLoop: opts.saturate ? 1 : 0,
    offeredPublishesPerSec: rate,
    publishesPerSec: perSec(m.ok, m.activeMs),
    subscribersPerRoom: opts.conns / opts.rooms,
    deliveryP99Ms: delivery.p99,
    ...(m.deliveries > 0 ? { cpuUsPerDelivery: ((b.cpuMs - a.cpuMs) * 1000) / m.deliveries } : {}),
    // Only wsgate sends deliveries through Redis (its cross-node bus); for the others it would be Redis's idle CPU.
    ...(ctx.redis && ctx.target.target === 'wsgate' && m.deliveries > 0 ? { redisCpuUsPerDelivery: ((b.redisCpuMs - a.redisCpuMs) * 1000) / m.deliveries } : {}),
  }, { publishAck: summarize(m.hist), delivery });
}

async function echo(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  await connect(ctx);
  ctx.phase('echo');
  const m = await ctx.gen.run({ cmd: 'echo', durationMs: opts.durationSec * 1000, rate: perWorker(opts.rate, opts.workers), window: opts.window });
  const rate = perSec(m.ok, opts.durationSec * 1000);
  await close(ctx);
  return result({ metric: 'round trips/s', value: rate, unit: '/s', higherIsBetter: true }, m, rate, { roundTrips: m.ok }, { roundTrip: summarize(m.hist) });
}

async function refreshStorm(ctx: ScenarioContext): Promise<ScenarioResult> {
  await connect(ctx);
  ctx.phase('refresh');
  const m = await ctx.gen.run({ cmd: 'refresh', timeoutMs: 60_000 });
  const rate = perSec(m.ok, m.activeMs);
  await close(ctx);
  return result({ metric: 'refreshes/s', value: rate, unit: '/s', higherIsBetter: true }, m, rate, { refreshed: m.ok }, { refresh: summarize(m.hist) });
}

async function hold(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  // The idle server's own CPU (timers, flushes) is not the connections' cost: measure it first.
  const idleShare = (await idle(ctx)).server;
  const base = ctx.sample();
  const heap0 = await ctx.metric('process_heap_used_bytes');
  const m0 = await connect(ctx);
  ctx.phase('join');
  await ctx.gen.run({ cmd: 'join' });
  // As an operator sees it: RSS a few seconds after the storm, no forced GC (its garbage may remain).
  ctx.phase('settle');
  await sleep(opts.settleSec * 1000);
  const settled = ctx.sample();
  const heap1 = await ctx.metric('process_heap_used_bytes');
  ctx.phase('hold');
  const cpu0 = ctx.cpuMs();
  const m = await ctx.gen.run({ cmd: 'hold', durationMs: opts.durationSec * 1000 });
  const cpuShare = Math.max(0, (ctx.cpuMs() - cpu0) / m.elapsedMs - idleShare);
  const rss = ctx.rss();
  const held = m0.ok;
  // Every member gets a room's publish: one publish per room (from its first connection), which
  // every other member of the room must receive (wherever the kernel put it: on a multi-worker
  // target the rooms span the workers).
  // Bare uWS on several processes has no bus between them: its rooms do not span processes, and it
  // is there for its memory only.
  const shared = !(ctx.target.target === 'uws' && ctx.target.workers > 1);
  ctx.phase('deliver');
  const d = await ctx.gen.run({ cmd: 'deliver', payloadBytes: opts.payloadBytes });
  const rooms = Math.min(opts.rooms, held);
  const expected = held - rooms;
  await close(ctx);
  const per = (bytes: number): number => (held > 0 ? bytes / held : 0);
  const perConn = per(rss - base.rssBytes);
  return result({ metric: 'RSS per connection', value: perConn, unit: 'bytes', higherIsBetter: false }, { ...m, errors: m0.errors }, undefined, {
    held,
    rssBytes: rss,
    rssBaseBytes: base.rssBytes,
    rssPer1kConnsMB: (perConn * 1000) / 1048576,
    rssSettledBytes: settled.rssBytes,
    rssPerConnSettledBytes: per(settled.rssBytes - base.rssBytes),
    rssAnonPerConnSettledBytes: per(settled.rssAnonBytes - base.rssAnonBytes),
    ...(heap0 !== undefined && heap1 !== undefined ? { heapUsedBaseBytes: heap0, heapUsedSettledBytes: heap1, heapPerConnSettledBytes: per(heap1 - heap0) } : {}),
    cpuShareHeld: cpuShare,
    cpuShareIdleServer: idleShare,
    cpuPer1kConns: held > 0 ? cpuShare / (held / 1000) : 0,
    ...(shared
      ? {
          deliveryPublishes: d.ok,
          deliveriesExpected: expected,
          deliveriesReceived: d.deliveries,
          deliveredAll: held === opts.conns && d.ok === rooms && d.deliveries === expected ? 1 : 0,
        }
      : {}),
  }, { handshake: summarize(m0.hist), ...(shared ? { delivery: summarize(d.deliveryHist) } : {}) });
}

/** The node ids of a gateway's listening workers, from its /healthz. */
async function workerNodes(port: number): Promise<string[]> {
  const h = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { workers?: Array<{ node: string; state: string }> };
  return (h.workers ?? []).filter((w) => w.state === 'listening').map((w) => w.node);
}

/**
 * A rolling restart under load (wsgate only, --gateway-workers 2 or more): every connection is a
 * client that reconnects with backoff as the SDK does (full jitter from 500 ms, at most 30 s); one
 * second in, the bench sends the gateway SIGHUP, and the workers are replaced one at a time, each
 * closing its connections with 4500 over WSGATE_DRAIN_SEC (--drain-sec); watched until every worker
 * is new and the last old one had --drain-sec + 2 s (at most --duration), then until every connection
 * is back (at most 15 s). Reported per second:
 * connections closed, reconnected and failed attempts; the headline is the most closes in one second.
 */
async function drain(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  const m0 = await connect(ctx);
  ctx.phase('drain');
  const before = await workerNodes(ctx.target.port);
  const running = ctx.gen.run({ cmd: 'reconnect', durationMs: opts.durationSec * 1000, baseDelayMs: 500, maxDelayMs: 30_000 });
  await sleep(1000);
  process.kill(ctx.target.procs[0]!.pid, 'SIGHUP');
  // The restart is done when every slot has a new worker; the last old one then drains for
  // --drain-sec: watch that too, and the reconnects of its last batch.
  const deadline = performance.now() + opts.durationSec * 1000;
  while (performance.now() < deadline) {
    const now = await workerNodes(ctx.target.port).catch(() => undefined);
    if (now && now.length === before.length && now.every((n) => !before.includes(n))) {
      await sleep((opts.drainSec + 2) * 1000);
      break;
    }
    await sleep(250);
  }
  ctx.gen.endPhase();
  const m = await running;
  const open = m.openAtEnd;
  await close(ctx);
  const sum = (k: string): number => (m.series[k] ?? []).reduce((a, b) => a + b, 0);
  const closed = m.series.closed ?? [];
  const reconnected = m.series.reconnected ?? [];
  const lastClose = closed.reduce((last, n, i) => (n > 0 ? i : last), -1);
  const lastReconnect = reconnected.reduce((last, n, i) => (n > 0 ? i : last), -1);
  const peak = Math.max(0, ...closed);
  return {
    headline: { metric: 'most connections closed in one second', value: peak, unit: '/s', higherIsBetter: false },
    throughput: undefined,
    metrics: {
      connected: m0.ok,
      closed: sum('closed'),
      closed4500: sum('closed4500'),
      reconnected: sum('reconnected'),
      failedAttempts: sum('failed'),
      openAtEnd: open,
      allBack: open === m0.ok ? 1 : 0,
      peakClosesPerSec: peak,
      peakReconnectsPerSec: Math.max(0, ...reconnected),
      closingSeconds: closed.filter((n) => n > 0).length,
      lastCloseSec: lastClose,
      lastReconnectSec: lastReconnect,
      drainSec: opts.drainSec,
    },
    latency: { handshake: summarize(m.hist) },
    errors: m.errors,
    workerCpu: m.workerCpu,
    series: m.series,
  };
}

async function revocation(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts, redis } = ctx;
  const every = opts.revokedShare > 0 ? Math.max(1, Math.round(1 / opts.revokedShare)) : 0;
  let revoked = 0;
  if (redis && every > 0) {
    // single commands in flight together: on a cluster the keys are on every master
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < opts.conns; i += every) {
      writes.push(redis.client.set(`revoked:${ctx.jtiPrefix}${i}`, '1', 'EX', 3600));
      revoked++;
    }
    await Promise.all(writes);
  }
  const calls0 = (await redis?.totalCalls()) ?? 0;
  const m = await connect(ctx);
  const calls = ((await redis?.totalCalls()) ?? 0) - calls0;
  const rt = (await ctx.metric('revocation_round_trips')) ?? calls;
  await close(ctx);
  const refusedRevoked = Object.entries(m.errors)
    .filter(([k]) => /TOKEN_REVOKED|Token revoked/.test(k))
    .reduce((a, [, v]) => a + v, 0);
  const rate = perSec(m.ok + refusedRevoked, m.elapsedMs);
  return result({ metric: 'upgrades decided/s', value: rate, unit: '/s', higherIsBetter: true }, m, rate, {
    revoked,
    refusedRevoked,
    accepted: m.ok,
    correct: refusedRevoked === revoked && m.ok === opts.conns - revoked ? 1 : 0,
    redisCommandsPerUpgrade: calls / opts.conns,
    redisRoundTripsPerUpgrade: rt / opts.conns,
  }, { handshake: summarize(m.hist) });
}

/** The server API's routes the http scenario drives (docs/API.md), on wsgate's API port and on bare uWS serving the same JSON. */
export const ADMIN_RUNS: ReadonlyArray<readonly [name: string, path: string]> = [
  ['admin-counts', '/v1/connections/counts'],
  ['admin-presence', '/v1/rooms/presence?tenant=bench&room=r%2F0'],
];

async function http(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { opts, target } = ctx;
  const base = `http://127.0.0.1:${target.port}`;
  const run = async (name: string, path: string, headers: Record<string, string> = {}, origin = base): Promise<[string, autocannon.Result]> => {
    ctx.phase(`http ${name}`);
    const r = await autocannon({ url: origin + path, connections: Math.min(100, opts.concurrency), pipelining: 1, duration: opts.durationSec, headers });
    return [name, r];
  };
  const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  const runs: Array<[string, autocannon.Result]> = [await run('healthz', '/healthz')];
  if (target.target === 'wsgate' || target.target === 'naive') {
    runs.push(await run('upgrade-no-token', '/ws', upgrade));
    runs.push(await run('upgrade-bad-token', '/ws', { ...upgrade, authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA' }));
  }
  // The server API (wsgate: its own listener, an API key, every call through the bus to every node)
  // next to bare uWS answering the same paths with the same JSON from a constant.
  if (target.adminPort !== undefined && (target.target === 'wsgate' || target.target === 'uws')) {
    const origin = `http://127.0.0.1:${target.adminPort}`;
    for (const [name, path] of ADMIN_RUNS) runs.push(await run(name, path, { authorization: `Bearer ${target.adminKey}` }, origin));
  }
  const metrics: Record<string, number> = {};
  const latency: Record<string, LatencySummary> = {};
  for (const [name, r] of runs) {
    metrics[`${name}.reqPerSec`] = r.requests.average;
    metrics[`${name}.p50Ms`] = r.latency.p50;
    metrics[`${name}.p99Ms`] = r.latency.p99;
    metrics[`${name}.non2xx`] = r.non2xx;
    metrics[`${name}.errors`] = r.errors;
    latency[name] = { count: r.requests.total, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p999: r.latency.p99_9, max: r.latency.max, mean: r.latency.mean, curve: [[50, r.latency.p50], [90, r.latency.p90], [99, r.latency.p99], [99.9, r.latency.p99_9], [100, r.latency.max]] };
  }
  const healthz = metrics['healthz.reqPerSec']!;
  return { headline: { metric: 'GET /healthz req/s', value: healthz, unit: '/s', higherIsBetter: true }, throughput: healthz, metrics, latency, errors: {}, workerCpu: [] };
}

export const scenarios: Record<ScenarioName, (ctx: ScenarioContext) => Promise<ScenarioResult>> = {
  'connect-storm': connectStorm,
  'reconnect-storm': reconnectStorm,
  fanout,
  echo,
  'refresh-storm': refreshStorm,
  hold,
  revocation,
  http,
  drain,
};
