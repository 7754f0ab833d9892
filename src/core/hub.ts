// The Hub: the core's face to the uWS adapter (server/gateway.ts). It wires the core's parts and
// forwards socket events to them; it holds no rules of its own:
//   sessions.ts   ids, the live set, connection caps, registry entries
//   requests.ts   rate limit, decode, dispatch
//   rooms.ts      join, leave, publish, presence query
//   refresh.ts    token:refresh
//   fanout.ts     local publish plus the Bus envelope
//   lifetime.ts   token expiry and slow consumers
//   notices.ts    presence notifications
// It knows no uWS and no Redis: sockets are reached through a SocketPort, stores through their ports.
import type { Authenticator } from '../auth/authenticate.js';
import type { Claims } from '../auth/claims.js';
import { Close, type CloseKind, type RefusalKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceTracker } from '../presence/tracker.js';
import { Decoder, encode, type FrameLimits } from '../protocol/codec.js';
import type { Encoding } from '../protocol/messages.js';
import type { ConnectionRegistry } from '../registry/registry.js';
import type { Bus, ConnectionEntry, PresenceStore } from '../stores/ports.js';
import type { DeploymentCaps } from './caps.js';
import { FanOut } from './fanout.js';
import { Lifetime, type LifetimeOptions } from './lifetime.js';
import { PresenceNotices } from './notices.js';
import { Outbox } from './outbox.js';
import type { Faults, SocketPort } from './ports.js';
import { RateLimiter, type RateLimits } from './ratelimit.js';
import { TokenRefresh } from './refresh.js';
import { Requests } from './requests.js';
import { RoomRequests, type RoomLimits } from './rooms.js';
import type { Session } from './session.js';
import { Sessions, type SessionLimits } from './sessions.js';

export type { Session } from './session.js';
export type { SocketPort, Faults } from './ports.js';

export interface HubOptions extends SessionLimits, RoomLimits, LifetimeOptions {
  readonly presenceNotify: boolean;
  readonly rate: RateLimits;
  readonly frame: FrameLimits;
}

export interface HubDeps {
  readonly authenticator: Authenticator;
  readonly registry: (snapshot: () => ConnectionEntry[]) => ConnectionRegistry;
  readonly presence: PresenceTracker;
  readonly presenceStore: PresenceStore;
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly now?: () => number;
  /** the deployment-wide caps, when configured */
  readonly caps?: DeploymentCaps;
}

export class Hub<S> {
  readonly registry: ConnectionRegistry;
  private readonly sessions: Sessions<S>;
  private readonly outbox: Outbox<S>;
  private readonly rooms: RoomRequests<S>;
  private readonly lifetime: Lifetime<S>;
  private readonly requests: Requests<S>;
  private readonly notices: PresenceNotices<S>;
  private readonly nodeId: string;

  constructor(opts: HubOptions, port: SocketPort<S>, private readonly deps: HubDeps) {
    const now = deps.now ?? Date.now;
    const limiter = new RateLimiter(opts.rate);
    this.sessions = new Sessions<S>(opts, limiter, now);
    this.registry = deps.registry(() => this.sessions.entries());
    this.outbox = new Outbox(port, deps.metrics, deps.faults);
    const fanOut = new FanOut(port, deps.bus, opts.nodeId, deps.faults, deps.metrics, (room) => deps.presence.hasRoom(room));
    // the bus subscribes to the rooms this node has members in (per-room channels)
    deps.presence.onRoom((room, here) => (here ? deps.bus.watch(room) : deps.bus.unwatch(room)));
    this.rooms = new RoomRequests(opts, port, this.outbox, fanOut, deps.presence, deps.presenceStore, deps.metrics, now);
    this.lifetime = new Lifetime(opts, port, this.outbox, deps.metrics, now);
    const refresh = new TokenRefresh(deps.authenticator, this.sessions, this.outbox, this.rooms, this.lifetime, this.registry, deps.metrics);
    this.requests = new Requests(new Decoder(opts.frame), limiter, this.outbox, this.rooms, refresh, deps.metrics, now);
    this.notices = new PresenceNotices(deps.presence, fanOut, opts.presenceNotify);
    this.nodeId = opts.nodeId;
  }

  get size(): number {
    return this.sessions.size;
  }

  get scheduled(): number {
    return this.lifetime.scheduled;
  }

  /** The connection caps, checked right before an upgrade; undefined = admitted. */
  admit(claims: Claims): RefusalKind | undefined {
    return this.sessions.admit(claims);
  }

  /** Deployment-wide caps are configured: an upgrade takes a reservation (reserve) before create. */
  get reserves(): boolean {
    return this.deps.caps !== undefined;
  }

  /** Takes a deployment-cap reservation: undefined = reserved (create(..., true) takes it over, or unreserve gives it back), else the refusal. */
  reserve(claims: Claims): RefusalKind | undefined | Promise<RefusalKind | undefined> {
    return this.deps.caps?.reserve(claims);
  }

  /** Gives back a reservation whose upgrade did not happen. */
  unreserve(claims: Claims): void {
    this.deps.caps?.release(claims.tenantId, claims.sub);
  }

  /** A session for an authenticated upgrade; the socket opens right after (or `close` undoes it). `reserved`: it holds a reservation, released at its close. */
  create(claims: Claims, encoding: Encoding, protocol: string | undefined, reserved = false): Session<S> {
    const s = this.sessions.create(claims, encoding, protocol);
    s.reserved = reserved;
    return s;
  }

  /**
   * The `connected` message of a session, as bytes. After an async upgrade the gateway encodes it
   * before res.cork, so that the open inside the cork only copies bytes (docs/UWS-1928.md). JSON
   * too is turned into bytes here: uWS would otherwise convert the string to UTF-8 inside the cork,
   * in a buffer it allocates (measured on upstream v20.57 with Redis: 3 sockets in 20,000 closed
   * with a string frame, see docs/UWS-1928.md).
   */
  connectedFrame(s: Session<S>): Buffer {
    const frame = encode(s.encoding, {
      type: 'connected',
      connectionId: s.id,
      user: s.userId,
      tenant: s.tenantId,
      exp: s.exp,
      permissions: s.permissions,
      node: this.nodeId,
      protocol: s.protocol ?? (s.encoding === 'msgpack' ? 'wsgate.v1.msgpack' : 'wsgate.v1.json'),
    });
    return typeof frame === 'string' ? Buffer.from(frame) : frame;
  }

  /** The socket is open. `connectedSent`: the gateway already sent connectedFrame(s) with the 101. */
  open(s: Session<S>, socket: S, connectedSent = false): void {
    this.sessions.open(s, socket);
    this.deps.metrics.connectionsOpen++;
    this.registry.add(this.sessions.entry(s));
    this.lifetime.schedule(s);
    if (connectedSent) this.deps.metrics.messagesOut++;
    else this.outbox.sendFrame(s, this.connectedFrame(s));
  }

  message(s: Session<S>, frame: ArrayBuffer, isBinary: boolean): void {
    this.requests.message(s, frame, isBinary);
  }

  /** The socket is gone (or never opened). */
  close(s: Session<S>): void {
    if (!this.sessions.close(s)) return;
    if (s.reserved) {
      s.reserved = false;
      this.deps.caps?.release(s.tenantId, s.userId);
    }
    this.deps.metrics.connectionsClosed++;
    this.lifetime.cancel(s);
    this.rooms.leaveAll(s);
    this.registry.remove(s.id);
  }

  /**
   * A token id was revoked (the store saw `<prefix><jti>` appear): every socket of this node that
   * carries it is closed with 4003 Token revoked. Returns how many.
   */
  revoked(jti: string): number {
    const hit = this.sessions.withJti(jti);
    for (const s of hit) {
      this.deps.metrics.revokedCloses++;
      this.outbox.end(s, Close.TOKEN_REVOKED);
    }
    return hit.length;
  }

  /** A failure while handling this session's socket: that socket is closed with 1011, nothing else. */
  fail(s: Session<S>, where: string, err: unknown): void {
    this.outbox.fail(s, where, err);
  }

  /** Closes every socket (shutdown); close() runs for each through the socket's close event. */
  closeAll(kind: CloseKind = Close.SHUTDOWN): void {
    for (const s of [...this.sessions]) {
      try {
        this.outbox.end(s, kind);
      } catch (err) {
        this.deps.faults.report('close-all', err);
      }
    }
  }

  sweep(): void {
    this.lifetime.sweep(this.sessions);
  }

  flushPresence(): Promise<void> {
    return this.notices.flush();
  }

  /** Heartbeat and repair of this node's deployment-cap counts (on the registry's interval). */
  flushCaps(): Promise<void> {
    return this.deps.caps?.flush() ?? Promise.resolve();
  }

  /** Clean shutdown of the stores' view of this node. */
  async forgetNode(): Promise<void> {
    await Promise.allSettled([this.registry.clear(), this.deps.presenceStore.removeNode(this.nodeId, this.deps.presence.rooms()), this.deps.caps?.forget()]);
  }
}
