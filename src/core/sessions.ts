// The table of sessions on this node: ids, the live set, the connection caps and the registry
// entries. Caps are counted per user (tenant + sub) and per tenant only when such a cap is
// configured: without one, an upgrade touches no map here.
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

export class Sessions<S> implements Iterable<Session<S>> {
  private readonly live = new Set<Session<S>>();
  private seq = 0;
  private readonly idPrefix: string;
  /** sessions created and not yet closed (from the upgrade decision to the close) */
  private admitted = 0;
  /** live sessions by token id: revocations reach the sockets that carry the revoked token */
  private readonly byJti = new Map<string, Session<S> | Set<Session<S>>>();
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
    return this.live[Symbol.iterator]();
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
      permissions: claims.permissions,
      perms: compilePermissions(claims.permissions),
      socket: undefined,
      rooms: new Set(),
      warned: false,
      closed: false,
      reserved: false,
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
    this.live.add(s);
    this.index(s);
  }

  /** The live sessions carrying token id `jti`. */
  withJti(jti: string): Session<S>[] {
    const e = this.byJti.get(jti);
    return e === undefined ? [] : e instanceof Set ? [...e] : [e];
  }

  /** The session's token (and so its jti) is about to change (token:refresh). */
  rekey(s: Session<S>, jti: string): void {
    this.unindex(s);
    s.jti = jti;
    if (!s.closed && s.socket !== undefined) this.index(s);
  }

  // One session per jti is the rule (a Map entry, no Set); a token shared by several connections gets a Set.
  private index(s: Session<S>): void {
    const e = this.byJti.get(s.jti);
    if (e === undefined) this.byJti.set(s.jti, s);
    else if (e instanceof Set) e.add(s);
    else if (e !== s) this.byJti.set(s.jti, new Set([e, s]));
  }

  private unindex(s: Session<S>): void {
    const e = this.byJti.get(s.jti);
    if (e === s) this.byJti.delete(s.jti);
    else if (e instanceof Set) {
      e.delete(s);
      if (e.size === 1) this.byJti.set(s.jti, e.values().next().value!);
      else if (e.size === 0) this.byJti.delete(s.jti);
    }
  }

  /** Marks the session closed; false when it already was. */
  close(s: Session<S>): boolean {
    if (s.closed) return false;
    s.closed = true;
    s.socket = undefined;
    this.count(s.tenantId, s.userId, -1);
    if (this.live.delete(s)) this.unindex(s);
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
