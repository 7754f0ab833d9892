// The table of sessions on this node: ids, the live set, the connection caps and the registry
// entries. Caps are counted per user (tenant + sub) and per tenant only when such a cap is
// configured. Open sessions are indexed by id, by token id and by tenant and user: revocations,
// disconnects and counts of the server API (core/control.ts) reach them without a scan.
//
// The user index is two maps deep (tenant, then sub), so that no key is built per upgrade; a user
// with one socket holds the session itself, not a Set. Both indexes are always on: measured against
// the tree without them (100k sessions, 100 tenants, median of 20 rounds on the shared 2-core
// machine, so noisy), they add 0.4 to 1.3 µs to a connection's open + close and 40 bytes of heap
// per open session (86 vs 46 bytes in the indexes), where a connection's upgrade alone costs
// ~140 µs of CPU in the connect storm (bench/README.md): under 1%. User revocations come from
// outside (any writer of the Redis key) and are not rate limited, so they must not scan.
import type { Claims } from '../auth/claims.js';
import { Refusal, type RefusalKind } from '../errors/codes.js';
import { keyOf2 } from '../keys/keys.js';
import type { Encoding } from '../protocol/messages.js';
import { compilePermissions } from '../rooms/permissions.js';
import type { ConnectionEntry } from '../stores/ports.js';
import type { RateLimiter } from './ratelimit.js';
import type { Session } from './session.js';

export interface SessionLimits {
  readonly nodeId: string;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerTenant: number;
}

/** One entry per key: the session, or a Set when several share the key (a token on two sockets). */
type OneOrMore<S> = Session<S> | Set<Session<S>>;

/** A tenant's open sessions on this node. */
interface TenantSessions<S> {
  count: number;
  /** sub -> sessions */
  readonly users: Map<string, OneOrMore<S>>;
}

export class Sessions<S> implements Iterable<Session<S>> {
  /** open sessions by id */
  private readonly live = new Map<string, Session<S>>();
  private seq = 0;
  private readonly idPrefix: string;
  /** sessions created and not yet closed (from the upgrade decision to the close) */
  private admitted = 0;
  /** live sessions by token id: revocations reach the sockets that carry the revoked token */
  private readonly byJti = new Map<string, OneOrMore<S>>();
  /** open sessions by tenant and user */
  private readonly byTenant = new Map<string, TenantSessions<S>>();
  /** per user (keyOf2(tenant, sub)) and per tenant; undefined when that cap is off */
  private readonly perUser: Map<string, number> | undefined;
  private readonly perTenant: Map<string, number> | undefined;

  constructor(
    private readonly limits: SessionLimits,
    private readonly limiter: RateLimiter,
    private readonly now: () => number,
  ) {
    this.idPrefix = `${limits.nodeId}.`;
    this.perUser = limits.maxConnectionsPerUser > 0 ? new Map() : undefined;
    this.perTenant = limits.maxConnectionsPerTenant > 0 ? new Map() : undefined;
  }

  get size(): number {
    return this.live.size;
  }

  [Symbol.iterator](): Iterator<Session<S>> {
    return this.live.values();
  }

  /** The connection caps, checked right before an upgrade; undefined = admitted. */
  admit(claims: Claims): RefusalKind | undefined {
    const l = this.limits;
    if (l.maxConnections > 0 && this.admitted >= l.maxConnections) return Refusal.UNAVAILABLE;
    if (this.perUser && (this.perUser.get(keyOf2(claims.tenantId, claims.sub)) ?? 0) >= l.maxConnectionsPerUser) return Refusal.TOO_MANY_CONNECTIONS;
    if (this.perTenant && (this.perTenant.get(claims.tenantId) ?? 0) >= l.maxConnectionsPerTenant) return Refusal.TOO_MANY_CONNECTIONS;
    return undefined;
  }

  private count(tenant: string, user: string, d: 1 | -1): void {
    this.admitted += d;
    if (this.perUser) bump(this.perUser, keyOf2(tenant, user), d);
    if (this.perTenant) bump(this.perTenant, tenant, d);
  }

  /** A session for an authenticated upgrade (the socket opens right after). */
  create(claims: Claims, encoding: Encoding, protocol: string | undefined): Session<S> {
    this.count(claims.tenantId, claims.sub, 1);
    const now = this.now();
    const s: Session<S> = {
      id: this.idPrefix + (++this.seq).toString(36),
      encoding,
      protocol,
      userId: claims.sub,
      tenantId: claims.tenantId,
      since: now,
      jti: claims.jti,
      exp: claims.exp,
      iat: claims.iat,
      permissions: claims.permissions,
      perms: compilePermissions(claims.permissions),
      socket: undefined,
      rooms: new Set(),
      warned: false,
      closed: false,
      wheelBucket: -1,
      tokens: 0,
      bytes: 0,
      refilledAt: now,
      strikes: 0,
    };
    this.limiter.fill(s, now);
    return s;
  }

  open(s: Session<S>, socket: S): void {
    s.socket = socket;
    this.live.set(s.id, s);
    add(this.byJti, s.jti, s);
    let t = this.byTenant.get(s.tenantId);
    if (t === undefined) this.byTenant.set(s.tenantId, (t = { count: 0, users: new Map() }));
    t.count++;
    add(t.users, s.userId, s);
  }

  /** The open session with this id. */
  byId(id: string): Session<S> | undefined {
    return this.live.get(id);
  }

  /** The live sessions carrying token id `jti`. */
  withJti(jti: string): Session<S>[] {
    return list(this.byJti.get(jti));
  }

  /** The open sessions of one user (tenant + sub). */
  ofUser(tenantId: string, sub: string): Session<S>[] {
    return list(this.byTenant.get(tenantId)?.users.get(sub));
  }

  /** Open sessions of one tenant. */
  tenantCount(tenantId: string): number {
    return this.byTenant.get(tenantId)?.count ?? 0;
  }

  /** Open sessions per tenant (tenants with none are absent). */
  tenantCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tenant, t] of this.byTenant) out.set(tenant, t.count);
    return out;
  }

  /** The session's token (and so its jti) is about to change (token:refresh). */
  rekey(s: Session<S>, jti: string): void {
    remove(this.byJti, s.jti, s);
    s.jti = jti;
    if (!s.closed && s.socket !== undefined) add(this.byJti, s.jti, s);
  }

  /** Marks the session closed; false when it already was. */
  close(s: Session<S>): boolean {
    if (s.closed) return false;
    s.closed = true;
    s.socket = undefined;
    this.count(s.tenantId, s.userId, -1);
    if (this.live.get(s.id) === s) {
      this.live.delete(s.id);
      remove(this.byJti, s.jti, s);
      const t = this.byTenant.get(s.tenantId)!;
      remove(t.users, s.userId, s);
      if (--t.count === 0) this.byTenant.delete(s.tenantId);
    }
    return true;
  }

  entry(s: Session<S>): ConnectionEntry {
    return { connId: s.id, nodeId: this.limits.nodeId, userId: s.userId, tenantId: s.tenantId, since: s.since, exp: s.exp };
  }

  entries(): ConnectionEntry[] {
    const out: ConnectionEntry[] = [];
    for (const s of this.live.values()) out.push(this.entry(s));
    return out;
  }
}

// One session per key is the rule (a Map entry, no Set); a key shared by several sessions gets a Set.
function add<S>(m: Map<string, OneOrMore<S>>, key: string, s: Session<S>): void {
  const e = m.get(key);
  if (e === undefined) m.set(key, s);
  else if (e instanceof Set) e.add(s);
  else if (e !== s) m.set(key, new Set([e, s]));
}

function remove<S>(m: Map<string, OneOrMore<S>>, key: string, s: Session<S>): void {
  const e = m.get(key);
  if (e === s) m.delete(key);
  else if (e instanceof Set) {
    e.delete(s);
    if (e.size === 1) m.set(key, e.values().next().value!);
    else if (e.size === 0) m.delete(key);
  }
}

function list<S>(e: OneOrMore<S> | undefined): Session<S>[] {
  return e === undefined ? [] : e instanceof Set ? [...e] : [e];
}

function bump(m: Map<string, number>, k: string, d: 1 | -1): void {
  const n = (m.get(k) ?? 0) + d;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}
