// The supervisor of a host's workers (docs/WORKERS.md): WSGATE_WORKERS > 1 runs this in the process
// the user started, and N worker processes (src/worker.ts), each a whole gateway with its own node
// id `<node>.<n>`, listening on one port with SO_REUSEPORT (the kernel spreads new connections over
// the listening workers). The supervisor accepts no client connection itself. It
//   - chooses the port (port 0 resolved; a port someone already listens on is refused),
//   - runs the in-host store (stores/host/server.ts): the embedded store shared by the workers, the
//     host-wide connection caps, the Bus relay,
//   - restarts a worker that dies, with backoff; after MAX_FAILURES quick deaths in a row of one
//     slot it gives up (onFatal: the CLI drains the others and exits 1),
//   - removes a dead worker's registry and presence entries at once (Redis: it knows the node id;
//     embedded: the in-host store does it when the worker's link closes) and tells the rooms,
//   - drains every worker together (SIGTERM), or restarts them one at a time (rolling restart),
//   - answers a worker's GET /healthz and /metrics with the whole host's (supervisor/aggregate.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.js';
import { FreshShared, VIEW_MIN_INTERVAL_MS } from '../core/fresh-shared.js';
import { presenceEnvelope } from '../core/notices.js';
import type { Logger } from '../observability/logger.js';
import type { DrainPlan, DrainReport } from '../server/drain.js';
import { probePort } from '../server/listen.js';
import type { PresenceTransition } from '../stores/ports.js';
import { HostServer } from '../stores/host/server.js';
import { busChannel } from '../stores/redis/bus.js';
import { createRedisClient, isCluster, type RedisClient } from '../stores/redis/client.js';
import { RedisPresenceStore } from '../stores/redis/presence.js';
import { RedisRegistryStore } from '../stores/redis/registry.js';
import { aggregateMetrics } from './aggregate.js';
import type { FromWorker, ToWorker } from './messages.js';

const WORKER_SCRIPT = fileURLToPath(new URL('../worker.js', import.meta.url));

/** Deaths in a row of one slot, each within QUICK_MS of its start, after which the supervisor gives up. */
export const MAX_FAILURES = 8;
/** A worker that served this long before dying starts its slot's count of failures afresh. */
const QUICK_MS = 30_000;
/** Restart delay: backoffMs * 2^(failures - 1), at most maxBackoffMs (defaults). */
const BACKOFF_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** How long a worker has to answer for /healthz and /metrics. */
const COLLECT_MS = 1000;

type State = 'starting' | 'listening' | 'draining' | 'exited';

interface WorkerProc {
  readonly n: number;
  readonly nodeId: string;
  readonly child: ChildProcess;
  state: State;
  readonly startedAt: number;
  listeningAt: number | undefined;
  drained: DrainReport | undefined;
  readonly listening: Promise<void>;
  readonly exited: Promise<void>;
}

interface Slot {
  readonly index: number;
  proc: WorkerProc | undefined;
  restarts: number;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

export interface SupervisorOptions {
  readonly config: Config;
  readonly workers: number;
  readonly logger: Logger;
  /** It cannot keep workers alive: the caller drains what is left and exits non-zero. */
  readonly onFatal?: (reason: string) => void;
  /** A worker was asked to drain through the server API (POST /v1/drain): the caller drains the host. */
  readonly onDrainRequest?: (plan: DrainPlan) => void;
  /** the worker entry (default: dist/src/worker.js next to this file) */
  readonly script?: string;
  /** node flags for the workers (default: this process's) */
  readonly execArgv?: readonly string[];
  /** restart delay after a slot's first quick death (doubles each time, at most maxBackoffMs) */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class Supervisor {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly slots: Slot[];
  private readonly host: HostServer;
  private seq = 0;
  private collectSeq = 0;
  /** every worker's asks share one collection, at most 4 a second (core/fresh-shared.ts) */
  private readonly collected = new FreshShared(() => this.collect(), VIEW_MIN_INTERVAL_MS);
  private readonly collecting = new Map<number, (m: Extract<FromWorker, { t: 'collected' }>) => void>();
  private redis: RedisClient | undefined;
  private redisStores: { registry: RedisRegistryStore; presence: RedisPresenceStore } | undefined;
  private stopping: Promise<void> | undefined;
  /** every worker process not yet exited, in a slot or not (a rolling restart's new one, an old one draining) */
  private readonly alive = new Set<WorkerProc>();
  /** cleanups of exited workers under way (a drain waits for them before closing Redis) */
  private readonly forgetting = new Set<Promise<void>>();
  private rolling: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  port = 0;

  constructor(private readonly opts: SupervisorOptions) {
    this.config = opts.config;
    this.log = opts.logger;
    this.slots = Array.from({ length: opts.workers }, (_, index) => ({ index, proc: undefined, restarts: 0, failures: 0, timer: undefined }));
    const c = this.config;
    this.host = new HostServer({
      registryTtlSec: c.registryTtlSec,
      presenceTtlSec: c.presenceTtlSec,
      caps: { maxConnections: c.maxConnections, maxConnectionsPerUser: c.maxConnectionsPerUser, maxConnectionsPerTenant: c.maxConnectionsPerTenant },
      onPresenceLost: (left) => (c.presenceNotify ? left.map((t) => presenceEnvelope(c.nodeId, t, c.presenceNotifyMaxNames)) : []),
    });
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  /** Every worker's pid, for tests and the bench. */
  get pids(): number[] {
    return this.slots.flatMap((s) => (s.proc && s.proc.state !== 'exited' ? [s.proc.child.pid!] : []));
  }

  /** Starts the host store and every worker; resolves with the port once all of them listen. */
  async start(): Promise<number> {
    const c = this.config;
    // Nothing may listen on the port yet: SO_REUSEPORT would otherwise let these workers join
    // another process's group (same user) and take part of its connections without an error.
    try {
      this.port = await probePort(c.host, c.port);
    } catch (err) {
      throw new Error(`cannot listen on ${c.host}:${c.port}: ${(err as Error).message}`);
    }
    await this.host.listen();
    if (c.redisUrl) {
      this.redis = createRedisClient({ url: c.redisUrl, cluster: c.redisCluster, name: `wsgate:${c.nodeId}:supervisor` });
      this.redis.on('error', () => undefined); // the workers log Redis outages; cleanup retries are logged below
      this.redisStores = { registry: new RedisRegistryStore(this.redis, c.keyPrefix, c.registryTtlSec), presence: new RedisPresenceStore(this.redis, c.keyPrefix, c.presenceTtlSec) };
    }
    const procs = this.slots.map((s) => (s.proc = this.spawn(s)));
    try {
      await Promise.all(procs.map((p) => p.listening));
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info({ port: this.port, host: c.host, workers: this.slots.length, pids: this.pids, store: c.redisUrl ? 'redis' : 'host' }, 'wsgate listening');
    return this.port;
  }

  private spawn(slot: Slot): WorkerProc {
    const n = ++this.seq;
    const nodeId = `${this.config.nodeId}.${n}`;
    const child = fork(this.opts.script ?? WORKER_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...(this.opts.execArgv ?? process.execArgv)] });
    let listened: () => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    const listening = new Promise<void>((resolve, reject) => {
      listened = resolve;
      failed = reject;
    });
    listening.catch(() => undefined); // observed by whoever waits for it
    let exitedResolve: () => void = () => undefined;
    const exited = new Promise<void>((r) => (exitedResolve = r));
    const proc: WorkerProc = { n, nodeId, child, state: 'starting', startedAt: Date.now(), listeningAt: undefined, drained: undefined, listening, exited };
    this.alive.add(proc);
    child.on('message', (m: FromWorker) => {
      try {
        this.message(proc, m, listened);
      } catch (err) {
        this.log.error({ err: String(err), worker: nodeId }, 'supervisor: bad message from a worker');
      }
    });
    child.on('error', (err) => this.log.warn({ err: err.message, worker: nodeId }, 'worker process error'));
    child.once('exit', (code, signal) => {
      const was = proc.state;
      proc.state = 'exited';
      this.alive.delete(proc);
      failed(new Error(`worker ${nodeId} exited (${code ?? signal}) before listening`));
      exitedResolve();
      this.exited(slot, proc, was, code, signal);
    });
    const start: ToWorker = { t: 'start', config: { ...this.config, nodeId, port: this.port, workers: 1 }, hostPath: this.host.path };
    child.send(start);
    this.log.info({ worker: nodeId, pid: child.pid, slot: slot.index }, 'worker starting');
    return proc;
  }

  private message(proc: WorkerProc, m: FromWorker, listened: () => void): void {
    switch (m.t) {
      case 'listening':
        if (proc.state === 'starting') proc.state = 'listening';
        proc.listeningAt = Date.now();
        listened();
        return;
      case 'collected':
        this.collecting.get(m.id)?.(m);
        return;
      case 'drained':
        proc.drained = m.report;
        return;
      case 'drain-host':
        this.opts.onDrainRequest?.({ graceSec: m.graceSec, spreadSec: m.spreadSec });
        return;
      case 'gather': {
        const answer = (body: unknown): void => {
          if (proc.child.connected) proc.child.send({ t: 'gathered', id: m.id, body } satisfies ToWorker);
        };
        (m.what === 'health' ? this.health() : this.metrics()).then(answer, (err: unknown) => answer({ error: String(err) }));
        return;
      }
    }
  }

  private send(proc: WorkerProc, m: ToWorker): void {
    if (proc.child.connected) proc.child.send(m);
  }

  private exited(slot: Slot, proc: WorkerProc, was: State, code: number | null, signal: NodeJS.Signals | null): void {
    // Its connections are gone: so are its entries, at once (embedded: the in-host store removed
    // them when the worker's link closed).
    const forgetting = this.forget(proc.nodeId).catch((err: unknown) => this.log.warn({ err: String(err), worker: proc.nodeId }, 'worker cleanup in Redis failed; its entries expire after the TTL'));
    this.forgetting.add(forgetting);
    void forgetting.finally(() => this.forgetting.delete(forgetting));
    const expected = this.stopping !== undefined || slot.proc !== proc || was === 'draining';
    if (expected) {
      this.log.info({ worker: proc.nodeId, code, signal, drained: proc.drained }, 'worker exited');
      return;
    }
    const quick = proc.listeningAt === undefined || Date.now() - proc.listeningAt < QUICK_MS;
    slot.failures = quick ? slot.failures + 1 : 1;
    if (slot.failures > MAX_FAILURES) {
      const reason = `worker slot ${slot.index} died ${slot.failures} times in a row`;
      this.log.error({ worker: proc.nodeId, code, signal }, `supervisor: ${reason}; giving up`);
      slot.proc = undefined;
      this.opts.onFatal?.(reason);
      return;
    }
    const delay = Math.min(this.opts.maxBackoffMs ?? BACKOFF_MAX_MS, (this.opts.backoffMs ?? BACKOFF_MS) * 2 ** (slot.failures - 1));
    this.log.warn({ worker: proc.nodeId, code, signal, restartInMs: delay, failures: slot.failures }, 'worker died; restarting');
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.stopping) return;
      slot.restarts++;
      const next = (slot.proc = this.spawn(slot));
      next.listening.catch(() => undefined);
    }, delay);
  }

  /** Removes a worker's registry and presence entries from Redis and tells its rooms who left. */
  private async forget(nodeId: string): Promise<void> {
    const stores = this.redisStores;
    if (!stores || !this.redis) return;
    const rooms = await stores.presence.nodeRooms(nodeId);
    await stores.presence.removeNode(nodeId, [...rooms.keys()]);
    await stores.registry.removeNode(nodeId);
    if (!this.config.presenceNotify || rooms.size === 0) return;
    const left: PresenceTransition[] = [];
    for (const [room, users] of rooms) {
      const present = new Set(await stores.presence.members(room));
      const gone = users.filter((u) => !present.has(u));
      if (gone.length > 0) left.push({ room, joined: [], left: gone });
    }
    // to each room's channel, as the workers' RedisBus publishes (stores/redis/bus.ts)
    const redis = this.redis;
    const room = this.config.busChannels === 'room';
    await Promise.all(
      left.map((t) => {
        const payload = presenceEnvelope(this.config.nodeId, t, this.config.presenceNotifyMaxNames);
        const channel = busChannel(this.config.keyPrefix, this.config.busChannels, t.room);
        return room && isCluster(redis) ? redis.spublish(channel, payload) : redis.publish(channel, payload);
      }),
    );
  }

  /**
   * Drains every worker at once (each closes its own connections over the spread), then stops the
   * host store. A second call with no time hurries the drain under way.
   */
  drain(plan?: Partial<DrainPlan>): Promise<void> {
    const full: DrainPlan = { graceSec: plan?.graceSec ?? this.config.drainGraceSec, spreadSec: plan?.spreadSec ?? this.config.drainSec };
    const live = (): WorkerProc[] => [...this.alive];
    if (this.stopping) {
      if (full.graceSec === 0 && full.spreadSec === 0) for (const p of live()) this.send(p, { t: 'drain', graceSec: 0, spreadSec: 0 });
      return this.stopping;
    }
    this.stopping = (async () => {
      for (const s of this.slots) if (s.timer) clearTimeout(s.timer);
      const procs = live();
      this.log.info({ workers: procs.length, ...full }, 'supervisor: draining every worker');
      for (const p of procs) {
        p.state = 'draining';
        this.send(p, { t: 'drain', ...full });
      }
      await Promise.all(procs.map((p) => p.exited));
      await Promise.all([...this.forgetting]);
      await this.host.close();
      if (this.redis) {
        if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis?.disconnect());
        else this.redis.disconnect();
      }
      this.log.info('supervisor: every worker stopped');
    })();
    return this.stopping;
  }

  stop(): Promise<void> {
    return this.drain({ graceSec: 0, spreadSec: 0 });
  }

  /**
   * Replaces the workers one at a time: a new worker starts and listens (the port keeps one more
   * listener meanwhile), then the old one drains without grace (the kernel sends new connections
   * to the listening workers as soon as its listen socket closes), its connections closed over
   * WSGATE_DRAIN_SEC with 4500 so that they reconnect, to the other workers. The other workers'
   * connections are not touched. Workers start from the script on disk: a rolling restart deploys
   * new code. Resolves when done (or at once when one is under way).
   */
  rollingRestart(): Promise<void> {
    this.rolling ??= (async () => {
      try {
        for (const slot of this.slots) {
          if (this.stopping) return;
          const old = slot.proc;
          // Not the slot's worker until it listens: if it dies first, nothing restarts it.
          const next = this.spawn(slot);
          try {
            await next.listening;
          } catch (err) {
            this.log.error({ err: String(err), slot: slot.index }, 'rolling restart: the new worker did not start; keeping the old one, stopping the restart');
            return;
          }
          if (this.stopping) return; // the drain under way has told it too
          slot.proc = next;
          slot.restarts++;
          slot.failures = 0;
          if (old && old.state !== 'exited') {
            old.state = 'draining';
            this.send(old, { t: 'drain', graceSec: 0, spreadSec: this.config.drainSec });
            await old.exited;
          }
          this.log.info({ slot: slot.index, old: old?.nodeId, worker: next.nodeId }, 'rolling restart: worker replaced');
        }
      } finally {
        this.rolling = undefined;
      }
    })();
    return this.rolling;
  }

  /** Each live worker's own health and metrics text; a worker that does not answer in time is left out. */
  private async collect(): Promise<Array<{ slot: Slot; proc: WorkerProc; got: Extract<FromWorker, { t: 'collected' }> | undefined }>> {
    const out = this.slots.flatMap((slot) => (slot.proc ? [{ slot, proc: slot.proc }] : []));
    return Promise.all(
      out.map(async ({ slot, proc }) => {
        if (proc.state === 'exited' || !proc.child.connected) return { slot, proc, got: undefined };
        const id = ++this.collectSeq;
        const got = await new Promise<Extract<FromWorker, { t: 'collected' }> | undefined>((resolve) => {
          const timer = setTimeout(() => {
            this.collecting.delete(id);
            resolve(undefined);
          }, COLLECT_MS);
          this.collecting.set(id, (m) => {
            clearTimeout(timer);
            this.collecting.delete(id);
            resolve(m);
          });
          this.send(proc, { t: 'collect', id });
        });
        return { slot, proc, got };
      }),
    );
  }

  /** GET /healthz of the host: every worker, summed where a sum means something. */
  async health(): Promise<Record<string, unknown>> {
    const all = await this.collected.get();
    const sum = (k: string): number => all.reduce((n, w) => n + (typeof w.got?.health[k] === 'number' ? (w.got.health[k] as number) : 0), 0);
    const first = all.find((w) => w.got)?.got?.health;
    const workers = all.map(({ slot, proc, got }) => ({
      slot: slot.index,
      node: proc.nodeId,
      pid: proc.child.pid,
      state: got === undefined && proc.state !== 'exited' ? 'unresponsive' : proc.state,
      restarts: slot.restarts,
      ...(got ? { uptimeSec: got.health.uptimeSec, connections: got.health.connections, pending: got.health.pending, draining: got.health.draining } : {}),
    }));
    const listening = workers.filter((w) => w.state === 'listening').length;
    return {
      status: listening === this.slots.length ? 'ok' : 'degraded',
      node: this.config.nodeId,
      pid: process.pid,
      uws: first?.uws,
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      connections: sum('connections'),
      draining: this.stopping !== undefined || workers.some((w) => w.draining === true),
      workers,
    };
  }

  /** GET /metrics of the host (supervisor/aggregate.ts) with the supervisor's own figures. */
  async metrics(): Promise<string> {
    const all = await this.collected.get();
    const texts = all.flatMap(({ proc, got }) => (got ? [{ node: proc.nodeId, text: got.metrics }] : []));
    const listening = all.filter((w) => w.proc.state === 'listening').length;
    const restarts = this.slots.reduce((n, s) => n + s.restarts, 0);
    const extra = [
      '# HELP wsgate_workers Worker processes configured (WSGATE_WORKERS).',
      '# TYPE wsgate_workers gauge',
      `wsgate_workers ${this.slots.length}`,
      '# HELP wsgate_workers_listening Worker processes listening now.',
      '# TYPE wsgate_workers_listening gauge',
      `wsgate_workers_listening ${listening}`,
      '# HELP wsgate_workers_reporting Worker processes whose figures this scrape includes.',
      '# TYPE wsgate_workers_reporting gauge',
      `wsgate_workers_reporting ${texts.length}`,
      '# HELP wsgate_worker_restarts_total Workers started again after one died (or replaced by a rolling restart).',
      '# TYPE wsgate_worker_restarts_total counter',
      `wsgate_worker_restarts_total ${restarts}`,
      '# HELP wsgate_host_bus_relayed_total Bus payloads the in-host store relayed between workers.',
      '# TYPE wsgate_host_bus_relayed_total counter',
      `wsgate_host_bus_relayed_total ${this.host.relayed}`,
      '# HELP wsgate_host_bus_dropped_total Bus payloads dropped for a worker that did not read (over 64 MiB queued).',
      '# TYPE wsgate_host_bus_dropped_total counter',
      `wsgate_host_bus_dropped_total ${this.host.dropped}`,
      '# TYPE wsgate_supervisor_rss_bytes gauge',
      `wsgate_supervisor_rss_bytes ${process.memoryUsage.rss()}`,
    ];
    return aggregateMetrics(texts, extra.join('\n') + '\n');
  }
}
