// The Hub: connections, their requests, rooms, presence and token lifetime. It knows no uWS
// and no Redis: sockets are reached through a SocketPort, stores through their ports. The
// uWS adapter (server/gateway.ts) turns socket events into calls here.
import type { Authenticator } from '../auth/authenticate.js';
import type { Claims } from '../auth/verifier.js';
import { Close, Refusal, ReplyError, type CloseKind, type RefusalKind, type ReplyErrorKind } from '../errors/codes.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { PresenceTracker, type PresenceChange } from '../presence/tracker.js';
import { decode, encode, encodeJson, encodeMsgpack, type ClientRequest, type AckResults, type Encoding, type RequestId, type ServerMessage } from '../protocol/codec.js';
import type { ConnectionRegistry } from '../registry/registry.js';
import { compilePermissions, type Permissions } from '../rooms/permissions.js';
import { roomKey, roomOf, topicOf, validRoom } from '../rooms/rooms.js';
import type { Bus, ConnectionEntry, PresenceStore } from '../stores/ports.js';
import { Packr, Unpackr } from 'msgpackr';
import { ExpiryWheel, type Scheduled } from './expiry.js';

/** How the Hub reaches sockets; implemented over uWS in server/, over fakes nowhere. */
export interface SocketPort<S> {
  /** Returns 1 sent, 0 buffered (backpressure), 2 dropped. */
  send(socket: S, data: string | Buffer, binary: boolean): number;
  subscribe(socket: S, topic: string): void;
  unsubscribe(socket: S, topic: string): void;
  end(socket: S, code: number, reason: string): void;
  /** Publishes to every subscriber of `topic`, except `exclude` when given. */
  publish(topic: string, data: string | Buffer, binary: boolean, exclude?: S): void;
  /** Runs `fn` with the socket corked (one syscall for its sends); for sends outside a socket callback. */
  cork(socket: S, fn: () => void): void;
  /** Bytes buffered for the socket (backpressure). */
  buffered(socket: S): number;
}

export interface Connection<S = unknown> extends Scheduled {
  readonly id: string;
  readonly encoding: Encoding;
  readonly protocol: string | undefined;
  readonly userId: string;
  readonly tenantId: string;
  readonly since: number;
  jti: string;
  /** token exp, seconds since epoch */
  exp: number;
  permissions: readonly string[];
  perms: Permissions;
  socket: S | undefined;
  /** room keys (tenant-qualified) */
  readonly rooms: Set<string>;
  warned: boolean;
  closed: boolean;
  /** request token bucket */
  tokens: number;
  refilledAt: number;
  /** requests refused in a row by the rate limit */
  strikes: number;
}

export interface HubOptions {
  readonly nodeId: string;
  readonly maxRooms: number;
  readonly maxRoomNameLength: number;
  readonly maxPublishBytes: number;
  readonly tokenExpiringSec: number;
  readonly expiryGraceMs: number;
  readonly expirySweepMs: number;
  readonly presenceNotify: boolean;
  /** requests per second per connection; 0 = unlimited */
  readonly rateLimit: number;
  readonly rateBurst: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerTenant: number;
  readonly maxBackpressureBytes: number;
}

export interface HubDeps {
  readonly authenticator: Authenticator;
  readonly registry: (snapshot: () => ConnectionEntry[]) => ConnectionRegistry;
  readonly presence: PresenceTracker;
  readonly presenceStore: PresenceStore;
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: () => number;
}

// Bus payloads: plain MessagePack { n: node, r: room key, b: msgpack frame, j: JSON frame }.
// Both encodings travel so that receiving nodes only copy bytes to their sockets.
const busPackr = new Packr({ useRecords: false, moreTypes: false });
const busUnpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export class Hub<S> {
  private readonly conns = new Set<Connection<S>>();
  private readonly wheel: ExpiryWheel<Connection<S>>;
  readonly registry: ConnectionRegistry;
  private readonly now: () => number;
  private seq = 0;
  private readonly idPrefix: string;
  /** connections created and not yet closed: per user (tenant + sub) and per tenant */
  private readonly perUser = new Map<string, number>();
  private readonly perTenant = new Map<string, number>();
  private admitted = 0;

  constructor(
    private readonly opts: HubOptions,
    private readonly port: SocketPort<S>,
    private readonly deps: HubDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.wheel = new ExpiryWheel(opts.expirySweepMs, this.now());
    this.registry = deps.registry(() => this.entries());
    this.idPrefix = `${opts.nodeId}.`;
    deps.bus.onMessage((payload) => this.fromBus(payload));
  }

  get size(): number {
    return this.conns.size;
  }

  get scheduled(): number {
    return this.wheel.size;
  }

  private entries(): ConnectionEntry[] {
    const out: ConnectionEntry[] = [];
    for (const c of this.conns) out.push(this.entry(c));
    return out;
  }

  private entry(c: Connection<S>): ConnectionEntry {
    return { connId: c.id, nodeId: this.opts.nodeId, userId: c.userId, tenantId: c.tenantId, since: c.since, exp: c.exp };
  }

  /** The connection caps, checked right before an upgrade; undefined = admitted. */
  admit(claims: Claims): RefusalKind | undefined {
    const o = this.opts;
    if (o.maxConnections > 0 && this.admitted >= o.maxConnections) return Refusal.UNAVAILABLE;
    if (o.maxConnectionsPerUser > 0 && (this.perUser.get(`${claims.tenantId}\n${claims.sub}`) ?? 0) >= o.maxConnectionsPerUser) return Refusal.TOO_MANY_CONNECTIONS;
    if (o.maxConnectionsPerTenant > 0 && (this.perTenant.get(claims.tenantId) ?? 0) >= o.maxConnectionsPerTenant) return Refusal.TOO_MANY_CONNECTIONS;
    return undefined;
  }

  private countConn(tenant: string, user: string, d: 1 | -1): void {
    this.admitted += d;
    const u = `${tenant}\n${user}`;
    const nu = (this.perUser.get(u) ?? 0) + d;
    if (nu > 0) this.perUser.set(u, nu);
    else this.perUser.delete(u);
    const nt = (this.perTenant.get(tenant) ?? 0) + d;
    if (nt > 0) this.perTenant.set(tenant, nt);
    else this.perTenant.delete(tenant);
  }

  /** Builds the connection for an authenticated upgrade (the socket opens right after). */
  create(claims: Claims, encoding: Encoding, protocol: string | undefined): Connection<S> {
    this.countConn(claims.tenantId, claims.sub, 1);
    const now = this.now();
    return {
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
      wheelBucket: -1,
      tokens: this.opts.rateBurst,
      refilledAt: now,
      strikes: 0,
    };
  }

  open(conn: Connection<S>, socket: S): void {
    conn.socket = socket;
    this.conns.add(conn);
    this.deps.metrics.connectionsOpen++;
    this.registry.add(this.entry(conn));
    this.scheduleExpiry(conn);
    this.send(conn, {
      type: 'connected',
      connectionId: conn.id,
      user: conn.userId,
      tenant: conn.tenantId,
      exp: conn.exp,
      permissions: conn.permissions,
      node: this.opts.nodeId,
      protocol: conn.protocol ?? (conn.encoding === 'msgpack' ? 'wsgate.v1.msgpack' : 'wsgate.v1.json'),
    });
  }

  close(conn: Connection<S>, _code: number): void {
    if (conn.closed) return;
    conn.closed = true;
    this.countConn(conn.tenantId, conn.userId, -1);
    conn.socket = undefined;
    this.conns.delete(conn);
    this.deps.metrics.connectionsClosed++;
    this.wheel.cancel(conn);
    for (const key of conn.rooms) this.deps.presence.leave(key, conn.userId);
    conn.rooms.clear();
    this.registry.remove(conn.id);
  }

  /** Closes every socket (shutdown). close() runs for each through the socket's close event. */
  closeAll(kind: CloseKind): void {
    for (const c of [...this.conns]) this.end(c, kind);
  }

  private end(conn: Connection<S>, kind: CloseKind): void {
    if (conn.socket !== undefined) this.port.end(conn.socket, kind.code, kind.reason);
  }

  private send(conn: Connection<S>, msg: ServerMessage): void {
    if (conn.socket === undefined) return;
    const r = this.port.send(conn.socket, encode(conn.encoding, msg), conn.encoding === 'msgpack');
    this.deps.metrics.messagesOut++;
    if (r === 2) this.deps.metrics.backpressureDrops++;
  }

  /** Sends outside a socket callback (after an await or from a timer): corked. */
  private sendLater(conn: Connection<S>, msg: ServerMessage): void {
    if (conn.socket === undefined) return;
    const s = conn.socket;
    this.port.cork(s, () => this.send(conn, msg));
  }

  private replyError(conn: Connection<S>, ref: RequestId | null, e: ReplyErrorKind, later = false): void {
    this.deps.metrics.replyErrors++;
    const msg: ServerMessage = { type: 'error', ref, code: e.code, message: e.message };
    if (later) this.sendLater(conn, msg);
    else this.send(conn, msg);
  }

  private ack(conn: Connection<S>, ref: RequestId, result: AckResults[keyof AckResults], later = false): void {
    const msg: ServerMessage = { type: 'ack', ref, result };
    if (later) this.sendLater(conn, msg);
    else this.send(conn, msg);
  }

  message(conn: Connection<S>, frame: ArrayBuffer, isBinary: boolean): void {
    this.deps.metrics.messagesIn++;
    const d = decode(conn.encoding, frame, isBinary);
    if (d === 'wrong-frame-type') return this.end(conn, Close.WRONG_FRAME_TYPE);
    if (!d.ok) return this.replyError(conn, d.ref, d.error);
    if (!this.take(conn)) {
      this.deps.metrics.rateLimited++;
      // A client that keeps flooding after a burst's worth of refusals is cut off.
      if (++conn.strikes > this.opts.rateBurst) {
        this.deps.metrics.rateLimitCloses++;
        return this.end(conn, Close.RATE_LIMITED);
      }
      return this.replyError(conn, d.req.id, ReplyError.RATE_LIMITED);
    }
    conn.strikes = 0;
    this.handle(conn, d.req);
  }

  /** Token bucket: refills at rateLimit per second up to rateBurst; one token per request. */
  private take(conn: Connection<S>): boolean {
    const rate = this.opts.rateLimit;
    if (rate === 0) return true;
    const now = this.now();
    conn.tokens = Math.min(this.opts.rateBurst, conn.tokens + ((now - conn.refilledAt) * rate) / 1000);
    conn.refilledAt = now;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  private handle(conn: Connection<S>, req: ClientRequest): void {
    switch (req.type) {
      case 'ping':
        return this.ack(conn, req.id, { ts: this.now() });
      case 'join':
        return this.join(conn, req.id, req.rooms);
      case 'leave':
        return this.leave(conn, req.id, req.rooms);
      case 'publish':
        return this.publish(conn, req.id, req.room, req.data, req.echo);
      case 'presence':
        return this.presenceQuery(conn, req.id, req.room);
      case 'token:refresh':
        return void this.refresh(conn, req.id, req.token);
    }
  }

  private join(conn: Connection<S>, id: RequestId, rooms: readonly string[]): void {
    // All or nothing: every room is checked before any is joined.
    let adding = 0;
    for (const room of rooms) {
      if (!validRoom(room, this.opts.maxRoomNameLength)) return this.replyError(conn, id, ReplyError.BAD_ROOM);
      if (!conn.perms.can('join', room)) return this.replyError(conn, id, ReplyError.FORBIDDEN);
      if (!conn.rooms.has(roomKey(conn.tenantId, room))) adding++;
    }
    if (conn.rooms.size + adding > this.opts.maxRooms) return this.replyError(conn, id, ReplyError.TOO_MANY_ROOMS);
    for (const room of rooms) {
      const key = roomKey(conn.tenantId, room);
      if (conn.rooms.has(key)) continue;
      conn.rooms.add(key);
      this.port.subscribe(conn.socket!, topicOf(key, conn.encoding));
      this.deps.presence.join(key, conn.userId);
    }
    this.ack(conn, id, { rooms });
  }

  private leaveRoom(conn: Connection<S>, key: string): void {
    conn.rooms.delete(key);
    if (conn.socket !== undefined) this.port.unsubscribe(conn.socket, topicOf(key, conn.encoding));
    this.deps.presence.leave(key, conn.userId);
  }

  private leave(conn: Connection<S>, id: RequestId, rooms: readonly string[]): void {
    const left: string[] = [];
    for (const room of rooms) {
      if (!validRoom(room, this.opts.maxRoomNameLength)) return this.replyError(conn, id, ReplyError.BAD_ROOM);
    }
    for (const room of rooms) {
      const key = roomKey(conn.tenantId, room);
      if (!conn.rooms.has(key)) continue;
      this.leaveRoom(conn, key);
      left.push(room);
    }
    this.ack(conn, id, { rooms: left });
  }

  private publish(conn: Connection<S>, id: RequestId, room: string, data: unknown, echo: boolean): void {
    if (!validRoom(room, this.opts.maxRoomNameLength)) return this.replyError(conn, id, ReplyError.BAD_ROOM);
    if (!conn.perms.can('publish', room)) return this.replyError(conn, id, ReplyError.FORBIDDEN);
    const ts = this.now();
    const msg: ServerMessage = { type: 'message', room, data, from: conn.userId, ts };
    // Encoded once per encoding for every subscriber, here and on other nodes.
    const bin = encodeMsgpack(msg);
    if (bin.length > this.opts.maxPublishBytes) return this.replyError(conn, id, ReplyError.PAYLOAD_TOO_LARGE);
    const txt = encodeJson(msg);
    const key = roomKey(conn.tenantId, room);
    this.fanOut(key, bin, txt, echo ? undefined : conn.socket);
    this.deps.metrics.publishes++;
    this.ack(conn, id, { ts });
  }

  private fanOut(key: string, bin: Buffer, txt: string, exclude: S | undefined): void {
    this.port.publish(topicOf(key, 'msgpack'), bin, true, exclude);
    this.port.publish(topicOf(key, 'json'), txt, false, exclude);
    if (this.deps.bus.distributed) {
      this.deps.bus.publish(busPackr.pack({ n: this.opts.nodeId, r: key, b: bin, j: txt })).catch((err: unknown) => {
        this.deps.logger.warn({ err: String(err) }, 'bus publish failed');
      });
    }
  }

  private fromBus(payload: Buffer): void {
    let m: { n?: unknown; r?: unknown; b?: unknown; j?: unknown };
    try {
      m = busUnpackr.unpack(payload) as typeof m;
    } catch {
      return;
    }
    if (m.n === this.opts.nodeId || typeof m.r !== 'string' || !(m.b instanceof Uint8Array) || typeof m.j !== 'string') return;
    this.port.publish(topicOf(m.r, 'msgpack'), Buffer.from(m.b.buffer, m.b.byteOffset, m.b.byteLength), true);
    this.port.publish(topicOf(m.r, 'json'), m.j, false);
  }

  private presenceQuery(conn: Connection<S>, id: RequestId, room: string): void {
    if (!validRoom(room, this.opts.maxRoomNameLength)) return this.replyError(conn, id, ReplyError.BAD_ROOM);
    if (!conn.perms.can('presence', room)) return this.replyError(conn, id, ReplyError.FORBIDDEN);
    this.deps.presenceStore.members(roomKey(conn.tenantId, room)).then(
      (users) => {
        if (!conn.closed) this.ack(conn, id, { room, users }, true);
      },
      () => {
        if (!conn.closed) this.replyError(conn, id, ReplyError.UNAVAILABLE, true);
      },
    );
  }

  /** The seed's token:refresh, then beyond: tenant check, revocation, room pruning, expiry. */
  private async refresh(conn: Connection<S>, id: RequestId, token: string): Promise<void> {
    const r = await this.deps.authenticator.verifyForRefresh(token);
    if (conn.closed) return;
    if (r === 'unavailable') return this.replyError(conn, id, ReplyError.UNAVAILABLE, true);
    if (r === 'invalid') {
      const s = conn.socket!;
      this.port.cork(s, () => {
        this.replyError(conn, id, ReplyError.INVALID_TOKEN);
        this.end(conn, Close.INVALID_TOKEN);
      });
      return;
    }
    if (r.sub !== conn.userId || r.tenantId !== conn.tenantId) return this.replyError(conn, id, ReplyError.USER_MISMATCH, true);
    conn.jti = r.jti;
    conn.exp = r.exp;
    conn.permissions = r.permissions;
    conn.perms = compilePermissions(r.permissions);
    conn.warned = false;
    this.scheduleExpiry(conn);
    this.registry.add(this.entry(conn));
    this.deps.metrics.tokenRefreshes++;
    const left: string[] = [];
    const s = conn.socket!;
    this.port.cork(s, () => {
      for (const key of [...conn.rooms]) {
        const room = roomOf(key);
        if (conn.perms.can('join', room)) continue;
        this.leaveRoom(conn, key);
        left.push(room);
      }
      this.send(conn, { type: 'token:refreshed', ref: id, exp: r.exp, permissions: r.permissions, left });
    });
  }

  private scheduleExpiry(conn: Connection<S>): void {
    const expMs = conn.exp * 1000;
    const warnAt = expMs - this.opts.tokenExpiringSec * 1000;
    this.wheel.schedule(conn, conn.warned || this.opts.tokenExpiringSec === 0 ? expMs + this.opts.expiryGraceMs : warnAt);
  }

  /**
   * One sweep, on an interval: slow consumers first (more than half the backpressure limit still
   * buffered: closed with 4501 before uWS has to drop anything; one native call per socket, a few
   * ms per 100k sockets), then the expiry wheel: warnings, and closes at exp.
   */
  sweep(): void {
    const now = this.now();
    const slow = this.opts.maxBackpressureBytes / 2;
    for (const conn of this.conns) {
      if (conn.socket !== undefined && this.port.buffered(conn.socket) > slow) {
        this.deps.metrics.slowConsumerCloses++;
        this.end(conn, Close.SLOW_CONSUMER);
      }
    }
    for (const conn of this.wheel.due(now)) {
      if (conn.closed || conn.socket === undefined) continue;
      const closeAt = conn.exp * 1000 + this.opts.expiryGraceMs;
      if (now >= closeAt) {
        this.deps.metrics.tokenExpiredCloses++;
        this.end(conn, Close.TOKEN_EXPIRED);
        continue;
      }
      if (!conn.warned) {
        conn.warned = true;
        this.sendLater(conn, { type: 'token:expiring', exp: conn.exp, in: Math.max(0, Math.round((conn.exp * 1000 - now) / 1000)) });
      }
      this.wheel.schedule(conn, closeAt);
    }
  }

  /** One presence flush, then the batched join/leave notifications of what it wrote. */
  async flushPresence(): Promise<void> {
    const changes = await this.deps.presence.flush();
    if (this.opts.presenceNotify) for (const c of changes) this.notify(c);
  }

  private notify(c: PresenceChange): void {
    const msg: ServerMessage = { type: 'presence', room: roomOf(c.room), joined: c.joined, left: c.left };
    this.fanOut(c.room, encodeMsgpack(msg), encodeJson(msg), undefined);
  }

  /** Clean shutdown of the stores' view of this node. */
  async forgetNode(): Promise<void> {
    await Promise.allSettled([this.registry.clear(), this.deps.presenceStore.removeNode(this.opts.nodeId, this.deps.presence.rooms())]);
  }
}
