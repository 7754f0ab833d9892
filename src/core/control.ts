// Commands of the server API that every node carries out on its own sockets (protocol/bus.ts
// Command): disconnect a connection or a user, close the sockets of a revoked token or user, count
// connections. run() does it here, sends it to the other nodes over the Bus, and gathers their
// answers: it resolves once every live node (the registry's list) has answered, or after
// `timeoutMs` with the nodes that did not. The commands are idempotent: a caller that got an
// incomplete answer may send the same again.
//
// A revocation reaches a node twice: through the store (the mirror sees the key written, Hub.revoked)
// and through the command that the server API sends right after writing it. Whichever comes first
// closes the sockets; the sockets the store's path closed are remembered for a few seconds, so that
// the command's answer still counts them.
import { Close, type CloseKind } from '../errors/codes.js';
import { keyOf } from '../keys/keys.js';
import type { Metrics } from '../observability/metrics.js';
import { encodeEnvelope, MAX_STATS_TENANTS, type Answer, type Command, type NodeStats } from '../protocol/bus.js';
import { revokedByUser, type Bus } from '../stores/ports.js';
import type { ControlEnvelope } from './fanout.js';
import type { Outbox } from './outbox.js';
import type { Faults } from './ports.js';
import type { Session } from './session.js';
import type { Sessions } from './sessions.js';

/** The answers of every node that answered a command. */
export interface Gathered {
  /** node id -> its answer (this node's included) */
  readonly answers: ReadonlyMap<string, Answer>;
  /** live nodes (by the registry) that did not answer in time */
  readonly missing: readonly string[];
  /** every live node answered; false also when the command could not be sent or the node list could not be read */
  readonly complete: boolean;
}

/** What a node says about itself in a stats answer, besides its counts. */
export interface NodeInfo {
  readonly draining: boolean;
  readonly uptimeSec: number;
}

export interface ControlDeps {
  readonly bus: Bus;
  readonly nodeId: string;
  /** the registry's live nodes */
  readonly liveNodes: () => Promise<string[]>;
  readonly timeoutMs: number;
  readonly info: () => NodeInfo;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

interface Pending {
  readonly answers: Map<string, Answer>;
  /** undefined until the node list is read */
  expected: ReadonlySet<string> | undefined;
  sent: boolean;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (g: Gathered) => void;
}

/** Commands in flight at once; the server API's rate limit keeps far below it. */
const MAX_PENDING = 1000;
/** How long the sockets a store-reported revocation closed are remembered, and how many such revocations. */
const RECENT_MS = 10_000;
const MAX_RECENT = 10_000;

type Revocation = Extract<Command, { op: 'revoke-token' | 'revoke-user' }>;
const revocationKey = (c: Revocation): string => (c.op === 'revoke-token' ? keyOf('t', c.jti) : keyOf('u', c.tenant, c.user, String(c.before)));

export class Control<S> {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  /** revocation key -> sockets its store-reported path closed, and when */
  private readonly recent = new Map<string, { closed: number; at: number }>();
  /** store-reported revocations of this event-loop turn, by revocation key */
  private storeQueue = new Map<string, Revocation>();

  constructor(
    private readonly sessions: Sessions<S>,
    private readonly outbox: Outbox<S>,
    private readonly deps: ControlDeps,
  ) {}

  /**
   * A revocation the store reported (Hub.revoked, Hub.revokedUser). Those of one event-loop turn are
   * carried out together with one scan of the sessions (a mass revocation writes thousands of keys,
   * and the mirror hands them over in bursts); their closes are remembered for the command that may
   * follow.
   */
  revokedByStore(c: Revocation): void {
    this.storeQueue.set(revocationKey(c), c);
    if (this.storeQueue.size === 1) {
      setImmediate(() => {
        try {
          this.flushStoreRevocations();
        } catch (err) {
          this.deps.faults.report('revoked', err);
        }
      });
    }
  }

  private flushStoreRevocations(): void {
    const batch = this.storeQueue;
    this.storeQueue = new Map();
    const jtis = new Map<string, string>(); // jti -> revocation key
    const users = new Map<string, Array<{ key: string; before: number }>>(); // keyOf(tenant, user) -> revocations
    for (const [key, c] of batch) {
      if (c.op === 'revoke-token') jtis.set(c.jti, key);
      else {
        const u = keyOf(c.tenant, c.user);
        let l = users.get(u);
        if (l === undefined) users.set(u, (l = []));
        l.push({ key, before: c.before });
      }
    }
    const counts = new Map<string, number>();
    const hit = (s: Session<S>): string | undefined => {
      const t = jtis.get(s.jti);
      if (t !== undefined) return t;
      if (users.size === 0) return undefined;
      const l = users.get(keyOf(s.tenantId, s.userId));
      if (l !== undefined) for (const r of l) if (revokedByUser(s.iat, r.before)) return r.key;
      return undefined;
    };
    const doomed = this.sessions.select((s) => {
      const key = hit(s);
      if (key === undefined) return false;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return true;
    });
    this.end(doomed, Close.TOKEN_REVOKED);
    if (counts.size === 0) return;
    const now = Date.now();
    if (this.recent.size + counts.size > MAX_RECENT) {
      for (const [k, v] of this.recent) if (now - v.at > RECENT_MS || this.recent.size + counts.size > MAX_RECENT) this.recent.delete(k);
    }
    for (const [key, n] of counts) this.recent.set(key, { closed: (this.recent.get(key)?.closed ?? 0) + n, at: now });
  }

  /** Runs the command on this node only (a revocation counts what its store-reported path closed just before). */
  execute(c: Command): Answer {
    if (c.op !== 'revoke-token' && c.op !== 'revoke-user') return this.carryOut(c);
    const key = revocationKey(c);
    const earlier = this.recent.get(key);
    this.recent.delete(key);
    return closed(answered(this.carryOut(c)) + (earlier !== undefined && Date.now() - earlier.at <= RECENT_MS ? earlier.closed : 0));
  }

  /** The command on this node's sockets. */
  private carryOut(c: Command): Answer {
    switch (c.op) {
      case 'disconnect': {
        const s = this.sessions.byId(c.connection);
        return closed(s ? this.end([s], c.reconnect ? Close.RECONNECT : Close.DISCONNECTED) : 0);
      }
      case 'disconnect-user':
        return closed(this.end(this.sessions.select((s) => s.userId === c.user && s.tenantId === c.tenant), c.reconnect ? Close.RECONNECT : Close.DISCONNECTED));
      case 'revoke-token':
        return closed(this.end(this.sessions.select((s) => s.jti === c.jti), Close.TOKEN_REVOKED));
      case 'revoke-user':
        return closed(this.end(this.sessions.select((s) => s.userId === c.user && s.tenantId === c.tenant && revokedByUser(s.iat, c.before)), Close.TOKEN_REVOKED));
      case 'stats':
        return { op: 'stats', stats: this.stats(c.tenant, c.tenants) };
    }
  }

  /** Runs the command here and on every other node; resolves with every answer (never rejects). */
  run(c: Command): Promise<Gathered> {
    const answers = new Map<string, Answer>([[this.deps.nodeId, this.execute(c)]]);
    const { bus, nodeId, timeoutMs, metrics } = this.deps;
    if (!bus.distributed) return Promise.resolve({ answers, missing: [], complete: true });
    if (this.pending.size >= MAX_PENDING) return Promise.resolve({ answers, missing: [], complete: false });
    const id = (++this.seq).toString(36);
    return new Promise<Gathered>((resolve) => {
      const p: Pending = { answers, expected: undefined, sent: false, resolve, timer: setTimeout(() => this.finish(id), timeoutMs) };
      this.pending.set(id, p);
      bus.broadcast(encodeEnvelope({ kind: 'command', node: nodeId, id, command: c })).then(
        () => {
          p.sent = true;
          this.settle(id);
        },
        () => {
          metrics.busPublishFailures++;
          this.finish(id);
        },
      );
      this.deps.liveNodes().then(
        (nodes) => {
          p.expected = new Set(nodes);
          this.settle(id);
        },
        () => undefined, // unknown: the timer ends it, incomplete
      );
    });
  }

  /** A command or an answer from another node (FanOut hands them here). */
  receive(e: ControlEnvelope): void {
    if (e.kind === 'answer') {
      const p = e.to === this.deps.nodeId ? this.pending.get(e.id) : undefined;
      if (p === undefined) return; // another node's, or too late
      p.answers.set(e.node, e.answer);
      this.settle(e.id);
      return;
    }
    const answer = this.execute(e.command);
    this.deps.bus.broadcast(encodeEnvelope({ kind: 'answer', node: this.deps.nodeId, to: e.node, id: e.id, answer })).catch(() => {
      this.deps.metrics.busPublishFailures++;
    });
  }

  /** Ends the command when every expected node has answered. */
  private settle(id: string): void {
    const p = this.pending.get(id);
    if (p === undefined || !p.sent || p.expected === undefined) return;
    for (const n of p.expected) if (!p.answers.has(n)) return;
    this.finish(id);
  }

  private finish(id: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    const missing = p.expected === undefined ? [] : [...p.expected].filter((n) => !p.answers.has(n)).sort();
    p.resolve({ answers: p.answers, missing, complete: p.sent && p.expected !== undefined && missing.length === 0 });
  }

  private end(sessions: readonly Session<S>[], kind: CloseKind): number {
    for (const s of sessions) {
      try {
        if (kind === Close.TOKEN_REVOKED) this.deps.metrics.revokedCloses++;
        else this.deps.metrics.disconnectCloses++;
        this.outbox.end(s, kind);
      } catch (err) {
        this.deps.faults.report('control-close', err);
      }
    }
    return sessions.length;
  }

  private stats(tenant: string | undefined, perTenant: boolean): NodeStats {
    const { draining, uptimeSec } = this.deps.info();
    if (tenant !== undefined) {
      const n = this.sessions.tenantCounts(tenant).get(tenant) ?? 0;
      return { connections: n, tenants: perTenant && n > 0 ? new Map([[tenant, n]]) : new Map(), truncated: false, draining, uptimeSec };
    }
    if (!perTenant) return { connections: this.sessions.size, tenants: new Map(), truncated: false, draining, uptimeSec };
    let tenants = this.sessions.tenantCounts();
    const truncated = tenants.size > MAX_STATS_TENANTS;
    if (truncated) tenants = new Map([...tenants].sort((a, b) => b[1] - a[1]).slice(0, MAX_STATS_TENANTS));
    return { connections: this.sessions.size, tenants, truncated, draining, uptimeSec };
  }
}

const closed = (n: number): Answer => ({ op: 'closed', closed: n });
const answered = (a: Answer): number => (a.op === 'closed' ? a.closed : 0);
