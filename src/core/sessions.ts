// The table of sessions on this node: ids, the live set, the connection caps and the registry
// entries. Caps are counted per user (tenant + sub) and per tenant only when such a cap is
// configured: without one, an upgrade touches no map here. With workers, the caps count the whole
// host: an Admission (the host) counts them, and this table only keeps its descriptor budget.
//
// There is no index by token id, user or tenant: revocations, disconnects and the server API's
// counts (core/control.ts) find their sessions with one scan of the live set (select()). An index
// by jti alone cost two map operations at every open and close (~2.5% of the upgrade path,
// profiled), and the tenant/user index another 40 bytes per session; one scan of 20,000 sessions
// takes ~0.1 ms. Revocations the store reports are gathered per event-loop turn and share one scan
// (Control.revokedByStore), so a burst of revocation writes costs one scan per turn, not per key.
import type { Claims } from '../auth/claims.js';
import { Refusal, type RefusalKind } from '../errors/codes.js';
import { keyOf2 } from '../keys/keys.js';
import type { Encoding } from '../protocol/messages.js';
import { compilePermissions } from '../rooms/permissions.js';
import type { ConnectionEntry } from '../stores/ports.js';
import type { Admission } from './ports.js';
import type { RateLimiter } from './ratelimit.js';
import type { Session } from './session.js';

export interface SessionLimits {
  readonly nodeId: string;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerTenant: number;
}

export class Sessions<S> implements Iterable<Session<S>> {
  /** open sessions */
  private readonly live = new Set<Session<S>>();
  private seq = 0;
  private readonly idPrefix: string;
  /** sessions created and not yet closed (from the upgrade decision to the close) */
  private admitted = 0;
  /** per user (keyOf2(tenant, sub)) and per tenant; undefined when that cap is off */
  private readonly perUser: Map<string, number> | undefined;
  private readonly perTenant: Map<string, number> | undefined;

  constructor(
    private readonly limits: SessionLimits,
    private readonly limiter: RateLimiter,
    private readonly now: () => number,
    /** the host's count of the caps (workers); undefined: counted here */
    private readonly shared?: Admission,
  ) {
    this.idPrefix = `${limits.nodeId}.`;
    this.perUser = limits.maxConnectionsPerUser > 0 && !shared ? new Map() : undefined;
    this.perTenant = limits.maxConnectionsPerTenant > 0 && !shared ? new Map() : undefined;
  }

  get size(): number {
    return this.live.size;
  }

  [Symbol.iterator](): Iterator<Session<S>> {
    return this.live.values();
  }

  /**
   * The connection caps, checked right before an upgrade; undefined = admitted. With a shared
   * Admission the answer is a promise, and an admitted upgrade holds a slot of the host's count:
   * create() takes it over (close releases it), or unadmit() gives it back.
   */
  admit(claims: Claims): RefusalKind | undefined | Promise<RefusalKind | undefined> {
    const l = this.limits;
    if (l.maxConnections > 0 && this.admitted >= l.maxConnections) return Refusal.UNAVAILABLE;
    if (this.shared) return this.shared.acquire(claims.tenantId, claims.sub);
    if (this.perUser && (this.perUser.get(keyOf2(claims.tenantId, claims.sub)) ?? 0) >= l.maxConnectionsPerUser) return Refusal.TOO_MANY_CONNECTIONS;
    if (this.perTenant && (this.perTenant.get(claims.tenantId) ?? 0) >= l.maxConnectionsPerTenant) return Refusal.TOO_MANY_CONNECTIONS;
    return undefined;
  }

  /** An upgrade admitted by a shared Admission that will not become a session (aborted, refused, failed). */
  unadmit(claims: Claims): void {
    this.shared?.release(claims.tenantId, claims.sub);
  }

  /** True when admit() may answer with a promise. */
  get admitsAsync(): boolean {
    return this.shared !== undefined;
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
      rooms: undefined,
      warned: false,
      closed: false,
      presenceWaiting: 0,
      reserved: false,
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
    this.live.add(s);
  }

  /** The open sessions that `match` accepts: one scan of the live set. */
  select(match: (s: Session<S>) => boolean): Session<S>[] {
    const out: Session<S>[] = [];
    for (const s of this.live) if (match(s)) out.push(s);
    return out;
  }

  /** The open session with this id. */
  byId(id: string): Session<S> | undefined {
    for (const s of this.live) if (s.id === id) return s;
    return undefined;
  }

  /** Open sessions per tenant (tenants with none are absent); `only` counts one tenant. */
  tenantCounts(only?: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.live) if (only === undefined || s.tenantId === only) out.set(s.tenantId, (out.get(s.tenantId) ?? 0) + 1);
    return out;
  }

  /** Marks the session closed; false when it already was. */
  close(s: Session<S>): boolean {
    if (s.closed) return false;
    s.closed = true;
    s.socket = undefined;
    this.count(s.tenantId, s.userId, -1);
    this.shared?.release(s.tenantId, s.userId);
    this.live.delete(s);
    return true;
  }

  entry(s: Session<S>): ConnectionEntry {
    return { connId: s.id, nodeId: this.limits.nodeId, userId: s.userId, tenantId: s.tenantId, since: s.since, exp: s.exp };
  }

  entries(): ConnectionEntry[] {
    const out: ConnectionEntry[] = [];
    for (const s of this.live) out.push(this.entry(s));
    return out;
  }
}

function bump(m: Map<string, number>, k: string, d: 1 | -1): void {
  const n = (m.get(k) ?? 0) + d;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}
