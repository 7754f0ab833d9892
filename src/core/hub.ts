// The Hub: the core's face to the uWS adapter (server/gateway.ts). It wires the core's parts and
// forwards socket events to them; it holds no rules of its own:
//   sessions.ts   ids, the live set, connection caps, registry entries
//   requests.ts   rate limit, decode, dispatch
//   rooms.ts      join, leave, publish, presence query
//   refresh.ts    token:refresh
//   fanout.ts     local publish plus the Bus envelope
//   control.ts    the server API's commands on every node: disconnect, revocation, counts
//   lifetime.ts   token expiry and slow consumers (one sweep)
//   notices.ts    presence notifications
// It knows no uWS and no Redis: sockets are reached through a SocketPort, stores through their ports.
import type { Authenticator } from '../auth/authenticate.js';
import type { Claims } from '../auth/claims.js';
import { Close, type CloseKind, type RefusalKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceTracker } from '../presence/tracker.js';
import { Decoder, encode, type FrameLimits } from '../protocol/codec.js';
import type { Command } from '../protocol/bus.js';
import type { Encoding } from '../protocol/messages.js';
import type { ConnectionRegistry, Registrable } from '../registry/registry.js';
import type { Bus, ConnectionEntry, PresenceStore } from '../stores/ports.js';
import type { DeploymentCaps } from './caps.js';
import { Control, type Gathered, type NodeInfo } from './control.js';
import { FanOut } from './fanout.js';
import { Lifetime, type LifetimeOptions } from './lifetime.js';
import { PresenceNotices } from './notices.js';
import { Outbox } from './outbox.js';
import type { Admission, Faults, SocketPort } from './ports.js';
import { RateLimiter, type RateLimits } from './ratelimit.js';
import { TokenRefresh } from './refresh.js';
import { Requests } from './requests.js';
import { PresenceQueries } from './presence-queries.js';
import { RoomRequests, type RoomLimits } from './rooms.js';
import type { Session } from './session.js';
import { Sessions, type SessionLimits } from './sessions.js';
import { UserBudgets, type UserLimits } from './user-budget.js';

export type { Session } from './session.js';
export type { SocketPort, Faults, Admission } from './ports.js';
export type { Gathered, NodeInfo } from './control.js';

// Presence queries (core/presence-queries.ts): one store read per room serves the room's queries for
// 250 ms; at most 256 rooms are read at once per node; 10,000 answers are kept.
const PRESENCE_CACHE_MS = 250;
const PRESENCE_READS_MAX = 256;
const PRESENCE_CACHED_MAX = 10_000;

export interface HubOptions extends SessionLimits, RoomLimits, LifetimeOptions {
  /** how long a presence query may wait for the store */
  readonly lookupTimeoutMs: number;
  readonly presenceNotify: boolean;
  /** names one presence notification may carry; more transitions in a flush: counts only */
  readonly presenceNotifyMaxNames: number;
  readonly rate: RateLimits;
  /** budgets of a user's sockets together on this node (core/user-budget.ts) */
  readonly users: UserLimits;
  readonly frame: FrameLimits;
}

export interface HubDeps {
  readonly authenticator: Authenticator;
  readonly registry: (snapshot: () => Iterable<Registrable>, toEntry: (s: Registrable) => ConnectionEntry) => ConnectionRegistry<Registrable>;
  readonly presence: PresenceTracker;
  readonly presenceStore: PresenceStore;
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly now?: () => number;
  /** what this node says about itself in the server API's node list */
  readonly info?: () => NodeInfo;
  /** the caps counted by the host (workers); undefined: counted here */
  readonly admission?: Admission;
  /** the deployment-wide caps, when configured */
  readonly caps?: DeploymentCaps;
}

export class Hub<S> {
  readonly registry: ConnectionRegistry<Registrable>;
  private readonly sessions: Sessions<S>;
  private readonly outbox: Outbox<S>;
  private readonly rooms: RoomRequests<S>;
  private readonly lifetime: Lifetime<S>;
  private readonly requests: Requests<S>;
  private readonly notices: PresenceNotices<S>;
  private readonly control: Control<S>;
  private readonly users: UserBudgets;
  private readonly now: () => number;
  readonly fanOut: FanOut<S>;
  private readonly nodeId: string;

  constructor(opts: HubOptions, port: SocketPort<S>, private readonly deps: HubDeps) {
    const now = deps.now ?? Date.now;
    this.now = now;
    const limiter = new RateLimiter(opts.rate);
    this.sessions = new Sessions<S>(opts, limiter, now, deps.admission);
    // the registry holds sessions, and builds their entries at flush time
    this.registry = deps.registry(() => this.sessions, (s) => this.sessions.entry(s as Session<S>));
    this.outbox = new Outbox(port, deps.metrics, deps.faults);
    this.outbox.forget = (s) => this.close(s as Session<S>);
    const fanOut = new FanOut(port, deps.bus, opts.nodeId, deps.faults, deps.metrics, (room) => deps.presence.connections(room), (room) => deps.presence.hasRoom(room));
    // the bus subscribes to the rooms this node has members in (per-room channels)
    deps.presence.onRoom((room, here) => (here ? deps.bus.watch(room) : deps.bus.unwatch(room)));
    const queries = new PresenceQueries(deps.presenceStore, deps.presence, opts.nodeId, { lookupTimeoutMs: opts.lookupTimeoutMs, cacheMs: PRESENCE_CACHE_MS, maxRooms: PRESENCE_READS_MAX, maxCached: PRESENCE_CACHED_MAX }, now);
    this.fanOut = fanOut;
    this.control = new Control(this.sessions, this.outbox, {
      bus: deps.bus,
      nodeId: opts.nodeId,
      liveNodes: () => this.registry.liveNodes(),
      timeoutMs: opts.lookupTimeoutMs,
      info: deps.info ?? (() => ({ draining: false, uptimeSec: 0 })),
      metrics: deps.metrics,
      faults: deps.faults,
    });
    fanOut.control = (e) => this.control.receive(e);
    fanOut.presenceChanged = (room) => queries.changed(room);
    this.users = new UserBudgets(opts.users);
    this.rooms = new RoomRequests(opts, port, this.outbox, fanOut, deps.presence, queries, this.users, deps.metrics, now);
    this.lifetime = new Lifetime(opts, port, this.outbox, deps.metrics, now);
    const refresh = new TokenRefresh(deps.authenticator, this.sessions, this.outbox, this.rooms, this.registry, deps.metrics);
    this.requests = new Requests(new Decoder(opts.frame), limiter, this.outbox, this.rooms, refresh, this.users, deps.metrics, now);
    this.notices = new PresenceNotices(deps.presence, fanOut, opts.presenceNotify, opts.presenceNotifyMaxNames);
    this.nodeId = opts.nodeId;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * The connection caps, checked right before an upgrade; undefined = admitted. A promise when the
   * host counts them (workers): then an admitted upgrade must become a session (create) or be
   * given back (unadmit).
   */
  admit(claims: Claims): RefusalKind | undefined | Promise<RefusalKind | undefined> {
    return this.sessions.admit(claims);
  }

  unadmit(claims: Claims): void {
    this.sessions.unadmit(claims);
  }

  /** True when admit() may answer with a promise (the host counts the caps: workers). */
  get admitsAsync(): boolean {
    return this.sessions.admitsAsync;
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
    const frame = this.connected(s);
    return typeof frame === 'string' ? Buffer.from(frame) : frame;
  }

  private connected(s: Session<S>): Buffer | string {
    return encode(s.encoding, {
      type: 'connected',
      connectionId: s.id,
      user: s.userId,
      tenant: s.tenantId,
      exp: s.exp,
      permissions: s.permissions,
      node: this.nodeId,
      protocol: s.protocol ?? (s.encoding === 'msgpack' ? 'wsgate.v1.msgpack' : 'wsgate.v1.json'),
    });
  }

  /** The socket is open. `connectedSent`: the gateway already sent connectedFrame(s) with the 101. */
  open(s: Session<S>, socket: S, connectedSent = false): void {
    this.sessions.open(s, socket);
    this.deps.metrics.connectionsOpen++;
    this.registry.add(s);
    if (connectedSent) this.deps.metrics.messagesOut++;
    else this.outbox.sendFrame(s, this.connected(s));
  }

  message(s: Session<S>, frame: ArrayBuffer, isBinary: boolean): void {
    this.requests.message(s, frame, isBinary);
  }

  /** A ping or pong from the client (`bytes` of payload): charged against the rate limit. */
  pingPong(s: Session<S>, bytes: number): void {
    this.requests.control(s, bytes);
  }

  /** The socket is gone (or never opened). */
  close(s: Session<S>): void {
    if (!this.sessions.close(s)) return;
    if (s.reserved) {
      s.reserved = false;
      this.deps.caps?.release(s.tenantId, s.userId);
    }
    this.deps.metrics.connectionsClosed++;
    this.rooms.leaveAll(s);
    this.registry.remove(s);
  }

  /**
   * A token id was revoked (the store saw `<prefix><jti>` appear): every socket of this node that
   * carries it is closed with 4003 Token revoked. Revocations of one event-loop turn are closed
   * together, with one scan of the sessions.
   */
  revoked(jti: string): void {
    this.control.revokedByStore({ op: 'revoke-token', jti });
  }

  /**
   * A user was revoked (the store saw `<userPrefix><keyOf(tenant, sub)>` written): every socket of
   * this node of that user whose token was issued before `before` (or has no iat) is closed with
   * 4003 Token revoked. Gathered per event-loop turn like revoked().
   */
  revokedUser(tenantId: string, sub: string, before: number): void {
    this.control.revokedByStore({ op: 'revoke-user', tenant: tenantId, user: sub, before });
  }

  /** A server API command, carried out on every node (core/control.ts). */
  command(c: Command): Promise<Gathered> {
    return this.control.run(c);
  }

  /** A failure while handling this session's socket: that socket is closed with 1011, nothing else. */
  fail(s: Session<S>, where: string, err: unknown): void {
    this.outbox.fail(s, where, err);
  }

  /** Closes every socket (shutdown); close() runs for each through the socket's close event. */
  closeAll(kind: CloseKind = Close.SHUTDOWN): void {
    this.closeSome(Infinity, kind);
  }

  /**
   * Closes up to `n` sockets (a drain's batch); returns how many it closed (a socket whose end
   * throws is reported and not counted). uWS runs the close event inside end(), which deletes the
   * session from the set being iterated: a Set iterator allows that, so no copy of 100k sessions is
   * made per batch.
   */
  closeSome(n: number, kind: CloseKind = Close.SHUTDOWN): number {
    let closed = 0;
    for (const s of this.sessions) {
      if (closed >= n) break;
      try {
        this.outbox.end(s, kind);
        closed++;
      } catch (err) {
        this.deps.faults.report('close-all', err);
      }
    }
    return closed;
  }

  sweep(): void {
    this.lifetime.sweep(this.sessions);
    this.users.sweep(this.now());
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
