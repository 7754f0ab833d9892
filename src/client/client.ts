// The wsgate client: one logical session over successive sockets. It authenticates each socket
// with a token from getToken, reconnects by the close-code policy (policy.ts) with backoff,
// refreshes the token when the gateway warns of its expiry, joins its rooms again after a
// reconnect, matches replies to requests by id, and queues (or fails) requests made while
// disconnected. docs/CLIENT.md describes the API, the state machine and the policies.
import type {
  AckResults,
  ConnectedMessage,
  Encoding,
  PresenceMessage,
  RoomMessage,
  ServerMessage,
  TokenExpiringMessage,
  TokenRefreshedMessage,
} from '../protocol/messages.js';
import { Close } from '../errors/codes.js';
import { frameCodec, frameTooLarge, type FrameCodec, type MsgpackCodec } from './codec.js';
import { Emitter } from './emitter.js';
import { ClientErrorCode as E, WsgateError, type Refusal } from './errors.js';
import { backoffDelay, decideClose, decideRefusal, type Decision } from './policy.js';
import { Requests, type Pending, type ReplyOf, type RequestBody } from './requests.js';
import type { OpenSocket, Socket } from './transport.js';

export type { ReplyOf, RequestBody } from './requests.js';

export type ClientState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface ReconnectOptions {
  /** window of the first retry's random delay, in ms (default 500) */
  readonly baseDelayMs?: number;
  /** largest window, in ms (default 30000) */
  readonly maxDelayMs?: number;
  /** attempts after a loss before the client closes; reset by every session (default 20) */
  readonly maxAttempts?: number;
}

export interface ClientOptions {
  /** the gateway's WebSocket endpoint, e.g. wss://gateway.example/ws */
  readonly url: string;
  /** Returns the token to use; called for every (re)connect and on token:expiring. */
  readonly getToken: () => string | Promise<string>;
  /** 'msgpack' (binary frames, the default) or 'json' (text frames) */
  readonly encoding?: Encoding;
  /** a request's reply must arrive this long after the call, queueing included (default 10000) */
  readonly requestTimeoutMs?: number;
  /** from opening a socket to the gateway's `connected` frame (default 10000) */
  readonly connectTimeoutMs?: number;
  /** backoff settings, or false to never reconnect */
  readonly reconnect?: ReconnectOptions | false;
  /** requests made while not connected: 'queue' (default) until connected, or 'fail' at once */
  readonly offline?: 'queue' | 'fail';
  /** most requests waiting in the queue (default 100); beyond, requests fail with QUEUE_FULL */
  readonly maxQueued?: number;
  /** largest frame sent; larger requests fail with FRAME_TOO_LARGE (default 65536, the gateway's WSGATE_MAX_PAYLOAD_BYTES) */
  readonly maxFrameBytes?: number;
  /** after this long without a frame from the gateway, send a ping; no reply within requestTimeoutMs drops the socket (default 25000; 0 disables) */
  readonly pingIntervalMs?: number;
  /** a MessagePack implementation to use instead of the SDK's own */
  readonly msgpack?: MsgpackCodec;
}

/** A state change; also emitted for each new retry while reconnecting. */
export interface StateChange {
  readonly state: ClientState;
  readonly previous: ClientState;
  /** close code of the socket that ended (or the code a refusal stands for) */
  readonly code?: number;
  readonly reason?: string;
  /** the HTTP refusal that ended the attempt (Node) */
  readonly refusal?: Refusal;
  /** reconnecting: this retry's number (1 = the first after a loss) and its delay */
  readonly attempt?: number;
  readonly delayMs?: number;
  /** closed: why, when not by close() */
  readonly error?: WsgateError;
}

export interface ClientEvents {
  state: StateChange;
  /** every session: the gateway's `connected` frame, once the rooms are joined again */
  connected: ConnectedMessage;
  message: RoomMessage;
  presence: PresenceMessage;
  'token:expiring': TokenExpiringMessage;
  'token:refreshed': TokenRefreshedMessage;
  /** failures not tied to a request the caller awaits: refresh, rejoin, refusals, undecodable frames, errors with ref null */
  error: WsgateError;
}

/** The session as the gateway described it, with exp and permissions kept current by refreshes. */
export type Session = Omit<ConnectedMessage, 'type'>;

interface Link {
  socket: Socket | undefined;
  /** the token this socket's session runs on (updated by refreshes) */
  token: string;
  /** the `connected` frame arrived */
  session: boolean;
  /** last frame from the gateway (ms) */
  lastSeen: number;
  /** the token the gateway last answered INVALID_TOKEN (a close 4006 follows) */
  invalidToken: string | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  refreshTimer: ReturnType<typeof setTimeout> | undefined;
  pingTimer: ReturnType<typeof setInterval> | undefined;
  pinging: boolean;
  ended: boolean;
  onEnded: Array<() => void>;
}

const REPLY_CODES_THAT_DROP_A_ROOM = new Set(['FORBIDDEN', 'BAD_ROOM', 'TOO_MANY_ROOMS']);
const RETRYABLE_REFRESH = new Set<string>([E.TOKEN_NOT_RENEWED, E.TOKEN_SOURCE_FAILED, E.TIMEOUT, 'UNAVAILABLE', 'RATE_LIMITED']);
/** the gateway's per-request room limit (docs/PROTOCOL.md: join takes 1 to 100 rooms) */
const ROOMS_PER_JOIN = 100;

export class WsgateClient extends Emitter<ClientEvents> {
  private _state: ClientState = 'connecting';
  private _session: Session | undefined;
  private readonly joined = new Set<string>();
  private readonly requests: Requests<Link>;
  /** retries since the last session */
  private attempt = 0;
  /** the token refused (401, 4001-4003, 4006) since the last session, if any, and how */
  private authRefused: { readonly token: string; readonly code: number; readonly reason: string } | undefined;
  /** the token of a session closed with 4007 (Token expired): never offered again */
  private expiredToken: string | undefined;
  private link: Link | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** bumped by every open() and by close(): a getToken that resolves late is ignored */
  private generation = 0;
  private refreshing: Promise<TokenRefreshedMessage> | undefined;
  private closedError: WsgateError | undefined;
  private readonly codec: FrameCodec;
  private readonly opts: Required<Omit<ClientOptions, 'msgpack' | 'reconnect'>> & { readonly reconnect: Required<ReconnectOptions> | false };

  constructor(
    options: ClientOptions,
    private readonly openSocket: OpenSocket,
    defaultMsgpack?: MsgpackCodec,
  ) {
    super();
    if (typeof options.url !== 'string' || typeof options.getToken !== 'function') throw new TypeError('connect needs { url, getToken }');
    this.opts = {
      url: options.url,
      getToken: options.getToken,
      encoding: options.encoding ?? 'msgpack',
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      reconnect: options.reconnect === false ? false : { baseDelayMs: 500, maxDelayMs: 30_000, maxAttempts: 20, ...options.reconnect },
      offline: options.offline ?? 'queue',
      maxQueued: options.maxQueued ?? 100,
      maxFrameBytes: options.maxFrameBytes ?? 65_536,
      pingIntervalMs: options.pingIntervalMs ?? 25_000,
    };
    this.codec = frameCodec(this.opts.encoding, options.msgpack ?? defaultMsgpack);
    this.requests = new Requests(this.opts.requestTimeoutMs);
    void this.open();
  }

  /** connecting (first socket), connected, reconnecting (after a loss, between attempts), closed (final). */
  get state(): ClientState {
    return this._state;
  }

  /** The current (or last) session: user, tenant, exp, permissions, connectionId, node, protocol. */
  get session(): Session | undefined {
    return this._session;
  }

  /** The rooms joined through this client; they are joined again after every reconnect. */
  get rooms(): string[] {
    return [...this.joined];
  }

  get encoding(): Encoding {
    return this.codec.encoding;
  }

  /** Requests waiting for a connection. */
  get queued(): number {
    return this.requests.queued;
  }

  /** Resolves with the session once connected (at once if connected); rejects if the client closes first. */
  ready(): Promise<Session> {
    if (this._state === 'connected') return Promise.resolve(this._session!);
    if (this._state === 'closed') return Promise.reject(this.closedError ?? new WsgateError(E.CLOSED, 'client closed'));
    return new Promise((resolve, reject) => {
      const off = this.on('state', (s) => {
        if (s.state === 'connected') {
          off();
          resolve(this._session!);
        } else if (s.state === 'closed') {
          off();
          reject(this.closedError ?? new WsgateError(E.CLOSED, 'client closed'));
        }
      });
    });
  }

  /** Joins rooms (all or nothing); resolves with the rooms. They are joined again after a reconnect. */
  async join(rooms: string | readonly string[]): Promise<readonly string[]> {
    return (await this.request({ type: 'join', rooms: typeof rooms === 'string' ? [rooms] : rooms })).rooms;
  }

  /** Leaves rooms; resolves with the rooms actually left. The client forgets them at once. */
  async leave(rooms: string | readonly string[]): Promise<readonly string[]> {
    return (await this.request({ type: 'leave', rooms: typeof rooms === 'string' ? [rooms] : rooms })).rooms;
  }

  /** Publishes `data` to every member of `room` (the sender too with echo: true); resolves with the gateway's timestamp. */
  publish(room: string, data: unknown, options: { readonly echo?: boolean } = {}): Promise<AckResults['publish']> {
    return this.request({ type: 'publish', room, data, echo: options.echo === true });
  }

  /** The distinct users present in a room, on every node. */
  presence(room: string): Promise<AckResults['presence']> {
    return this.request({ type: 'presence', room });
  }

  ping(): Promise<AckResults['ping']> {
    return this.request({ type: 'ping' });
  }

  /**
   * Refreshes the token now: getToken, then token:refresh. The client does this by itself on
   * token:expiring. Concurrent calls share one refresh.
   */
  refresh(): Promise<TokenRefreshedMessage> {
    this.refreshing ??= this.runRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Sends any request; resolves with its ack's result (token:refresh: the token:refreshed message), rejects with a WsgateError. */
  request<B extends RequestBody>(body: B): Promise<ReplyOf<B['type']>> {
    if (this._state === 'closed') return Promise.reject(this.closedError ?? new WsgateError(E.CLOSED, 'client closed'));
    // Leaving is an intent: a reconnect before the reply must not join these rooms again.
    if (body.type === 'leave') for (const room of body.rooms) this.joined.delete(room);
    return new Promise((resolve, reject) => {
      const p = this.requests.create(body, resolve as (v: unknown) => void, reject);
      if (this._state === 'connected' && this.link) return this.transmit(this.link, p);
      if (this.opts.offline === 'fail') return this.requests.fail(p, new WsgateError(E.NOT_CONNECTED, `not connected (${this._state})`, { request: body.type }));
      if (this.requests.queued >= this.opts.maxQueued) return this.requests.fail(p, new WsgateError(E.QUEUE_FULL, `${this.opts.maxQueued} requests already wait for a connection`, { request: body.type }));
      this.requests.enqueue(p);
    });
  }

  /** Closes for good: no reconnect; pending and queued requests fail with CLOSED. Resolves when the socket has closed. */
  close(): Promise<void> {
    const link = this.link;
    this.finish(1000, 'closed by the client', undefined);
    if (!link || link.ended) return Promise.resolve();
    return new Promise((resolve) => link.onEnded.push(resolve));
  }

  // ---- connection lifecycle

  private async open(): Promise<void> {
    this.retryTimer = undefined;
    const generation = ++this.generation;
    let token: string;
    try {
      token = await this.opts.getToken();
    } catch (cause) {
      if (generation !== this.generation) return;
      this.emit('error', new WsgateError(E.TOKEN_SOURCE_FAILED, 'getToken failed', { cause }));
      return this.retry({ action: 'reconnect', minDelayMs: 0 }, 1006, 'getToken failed', undefined);
    }
    if (generation !== this.generation) return;
    if (typeof token !== 'string' || token === '') {
      return this.finish(4001, 'getToken returned no token', new WsgateError(E.TOKEN_SOURCE_FAILED, 'getToken returned no token'));
    }
    if (token === this.expiredToken) {
      // A token source that renews late: ask again after a backoff rather than spend an upgrade on a 401.
      this.emit('error', new WsgateError(E.TOKEN_NOT_RENEWED, 'getToken returned the token that just expired', {}));
      return this.retry({ action: 'reconnect', minDelayMs: 0 }, Close.TOKEN_EXPIRED.code, Close.TOKEN_EXPIRED.reason, undefined);
    }
    const refused = this.authRefused;
    if (refused !== undefined && token === refused.token) {
      const why = `the gateway refused the token (${refused.code}${refused.reason ? ` ${refused.reason}` : ''}) and getToken returned it again`;
      return this.finish(refused.code, refused.reason, new WsgateError(E.CLOSED, why, { closeCode: refused.code }));
    }
    const link: Link = { socket: undefined, token, session: false, lastSeen: Date.now(), invalidToken: undefined, timer: undefined, refreshTimer: undefined, pingTimer: undefined, pinging: false, ended: false, onEnded: [] };
    this.link = link;
    try {
      link.socket = this.openSocket(this.opts.url, this.codec.protocol, token, {
        open: () => undefined,
        message: (data) => {
          if (link === this.link) this.onFrame(link, data);
        },
        close: (code, reason, refusal) => {
          link.ended = true;
          for (const f of link.onEnded.splice(0)) f();
          if (link === this.link) this.onEnd(link, code, reason, refusal);
        },
      });
    } catch (cause) {
      this.link = undefined;
      return this.finish(1006, 'cannot open a WebSocket', new WsgateError(E.SOCKET_FAILED, `cannot open a WebSocket to ${this.opts.url}`, { cause }));
    }
    link.timer = setTimeout(() => this.drop(link, 'no connected frame in time'), this.opts.connectTimeoutMs);
  }

  private onFrame(link: Link, data: string | ArrayBuffer | Uint8Array): void {
    link.lastSeen = Date.now();
    let msg: ServerMessage;
    try {
      msg = this.codec.decode(data);
    } catch (cause) {
      this.emit('error', new WsgateError(E.DECODE_FAILED, 'a frame from the gateway could not be decoded', { cause }));
      return;
    }
    switch (msg.type) {
      case 'connected':
        return void this.onSession(link, msg);
      case 'ack':
      case 'token:refreshed':
        return this.settle(msg.ref, msg);
      case 'error':
        if (this.requests.has(msg.ref)) return this.settle(msg.ref, msg);
        return this.emit('error', new WsgateError(msg.code, msg.message, { ref: msg.ref }));
      case 'message':
        return this.emit('message', msg);
      case 'presence':
        return this.emit('presence', msg);
      case 'token:expiring':
        this.emit('token:expiring', msg);
        return this.autoRefresh(link, Date.now() + msg.in * 1000);
    }
  }

  /** The `connected` frame: join the rooms again, then the session is up and the queue goes out. */
  private async onSession(link: Link, msg: ConnectedMessage): Promise<void> {
    if (link.session) return;
    clearTimeout(link.timer);
    link.session = true;
    this.attempt = 0;
    this.authRefused = undefined;
    this.expiredToken = undefined;
    const { type: _type, ...session } = msg;
    this._session = { ...session, permissions: [...session.permissions] };
    await this.rejoin(link);
    if (link !== this.link) return;
    this.setState('connected', {});
    this.emit('connected', msg);
    for (const p of this.requests.dequeueAll()) this.transmit(link, p);
    if (this.opts.pingIntervalMs > 0) link.pingTimer = setInterval(() => this.heartbeat(link), this.opts.pingIntervalMs);
  }

  private async rejoin(link: Link): Promise<void> {
    const rooms = [...this.joined];
    for (let i = 0; i < rooms.length; i += ROOMS_PER_JOIN) {
      const chunk = rooms.slice(i, i + ROOMS_PER_JOIN);
      try {
        await this.internal(link, { type: 'join', rooms: chunk });
        continue;
      } catch (e) {
        if (link !== this.link) return;
        if (!REPLY_CODES_THAT_DROP_A_ROOM.has((e as WsgateError).code)) {
          // e.g. a timeout: keep the rooms; the next session tries again
          this.emit('error', new WsgateError(E.REJOIN_FAILED, `rooms not joined again: ${(e as Error).message}`, { cause: e }));
          continue;
        }
      }
      // All or nothing refused: find the rooms the session no longer allows, one by one.
      for (const room of chunk) {
        try {
          await this.internal(link, { type: 'join', rooms: [room] });
        } catch (e) {
          if (link !== this.link) return;
          if (REPLY_CODES_THAT_DROP_A_ROOM.has((e as WsgateError).code)) this.joined.delete(room);
          this.emit('error', new WsgateError(E.REJOIN_FAILED, `room ${room} not joined again: ${(e as Error).message}`, { room, cause: e }));
        }
      }
    }
  }

  /** A socket ended: settle its requests, then reconnect or close by the policy. */
  private onEnd(link: Link, code: number, reason: string, refusal: Refusal | undefined): void {
    this.unlink(link, code);
    if (this._state === 'closed') return;
    // A refused upgrade (Node) arrives with the close code its refusal stands for (401 AUTH_FAILED: 4002).
    const effective = code;
    let decision: Decision;
    if (refusal) {
      decision = decideRefusal(refusal);
      this.emit('error', new WsgateError(E.REFUSED, `upgrade refused: ${refusal.status} ${refusal.error || refusal.code}`, { refusal, closeCode: code }));
    } else {
      decision = decideClose(code);
    }
    if (code === Close.TOKEN_EXPIRED.code) this.expiredToken = link.token;
    if (decision.action === 'new-token') {
      if (this.authRefused !== undefined) {
        return this.finish(effective, reason, new WsgateError(E.CLOSED, `refused again (${effective}${reason ? ` ${reason}` : ''}) right after a token refusal`, { closeCode: effective, refusal }), refusal);
      }
      // After a refused token:refresh (4006), the refused token is the refresh's, not the socket's.
      this.authRefused = { token: code === 4006 && link.invalidToken !== undefined ? link.invalidToken : link.token, code, reason };
    }
    if (decision.action === 'stop') {
      return this.finish(effective, reason, new WsgateError(E.CLOSED, `closed by the gateway (${effective}${reason ? ` ${reason}` : ''}); not reconnecting`, { closeCode: effective, refusal }), refusal);
    }
    this.retry(decision, effective, reason, refusal);
  }

  private retry(decision: Decision, code: number, reason: string, refusal: Refusal | undefined): void {
    const r = this.opts.reconnect;
    if (r === false || this.attempt >= r.maxAttempts) {
      const why = r === false ? 'reconnect disabled' : `gave up after ${this.attempt} attempts`;
      return this.finish(code, reason, new WsgateError(E.CLOSED, `${why} (last close ${code}${reason ? ` ${reason}` : ''})`, { closeCode: code, refusal }), refusal);
    }
    const delayMs = Math.max(decision.minDelayMs, backoffDelay(r, this.attempt));
    this.attempt++;
    this.setState('reconnecting', { code, reason, refusal, attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => void this.open(), delayMs);
  }

  /** Local detection of a dead socket (connect timeout, unanswered ping): handled as a network loss. */
  private drop(link: Link, reason: string): void {
    if (link !== this.link) return;
    // A dead peer would not answer a closing handshake: drop the socket where the platform can.
    if (link.socket?.terminate) link.socket.terminate();
    else link.socket?.close();
    this.onEnd(link, 1006, reason, undefined);
  }

  /** Detaches the link: timers stop, requests in flight on it fail with DISCONNECTED. */
  private unlink(link: Link, code: number): void {
    if (this.link === link) this.link = undefined;
    clearTimeout(link.timer);
    clearTimeout(link.refreshTimer);
    clearInterval(link.pingTimer);
    this.requests.failAll(link, (p) => new WsgateError(E.DISCONNECTED, `socket closed (${code}) before the reply`, { request: p.body.type, closeCode: code }));
  }

  private finish(code: number, reason: string, error: WsgateError | undefined, refusal?: Refusal): void {
    if (this._state === 'closed') return;
    this.generation++;
    clearTimeout(this.retryTimer);
    const closedError = (this.closedError = error ?? new WsgateError(E.CLOSED, 'client closed', { closeCode: code }));
    this.requests.failAll(undefined, () => closedError);
    const link = this.link;
    if (link) {
      this.unlink(link, code);
      link.socket?.close(1000);
    }
    this.setState('closed', { code, reason, refusal, error });
  }

  private setState(state: ClientState, info: Omit<StateChange, 'state' | 'previous'>): void {
    const previous = this._state;
    this._state = state;
    const change: StateChange = { state, previous };
    for (const [k, v] of Object.entries(info)) if (v !== undefined) (change as unknown as Record<string, unknown>)[k] = v;
    this.emit('state', change);
  }

  // ---- requests

  /** A request of the client itself (rejoin, refresh, ping): sent at once on `link`, never queued. */
  private internal<B extends RequestBody>(link: Link, body: B): Promise<ReplyOf<B['type']>> {
    return new Promise((resolve, reject) => this.transmit(link, this.requests.create(body, resolve as (v: unknown) => void, reject)));
  }

  /** Encodes and sends a request on `link`, or fails it (nothing is sent that the gateway would drop the socket for). */
  private transmit(link: Link, p: Pending<Link>): void {
    const fail = (e: WsgateError): void => this.requests.fail(p, e);
    const msg: Record<string, unknown> = { id: p.id, ...p.body };
    msg.id = p.id;
    let frame: string | Uint8Array;
    try {
      frame = this.codec.encode(msg);
    } catch (cause) {
      return fail(new WsgateError(E.ENCODE_FAILED, `cannot encode the ${p.body.type} request: ${(cause as Error).message}`, { request: p.body.type, cause }));
    }
    if (frameTooLarge(frame, this.opts.maxFrameBytes)) {
      return fail(new WsgateError(E.FRAME_TOO_LARGE, `the ${p.body.type} frame is larger than maxFrameBytes (${this.opts.maxFrameBytes})`, { request: p.body.type }));
    }
    if (link !== this.link || !link.socket) return fail(new WsgateError(E.DISCONNECTED, 'socket closed before the request was sent', { request: p.body.type }));
    p.link = link;
    try {
      link.socket.send(frame);
    } catch (cause) {
      fail(new WsgateError(E.DISCONNECTED, 'the socket would not send', { request: p.body.type, cause }));
    }
  }

  /** A reply: resolve or reject its request, after the effects on the client's own state. */
  private settle(ref: unknown, msg: ServerMessage): void {
    const p = this.requests.take(ref);
    if (!p) return; // timed out already
    const body = p.body;
    if (msg.type === 'error') {
      // A close 4006 follows: the token it refuses is this one, not the socket's.
      if (msg.code === 'INVALID_TOKEN' && body.type === 'token:refresh' && p.link) p.link.invalidToken = body.token;
      return p.reject(new WsgateError(msg.code, msg.message, { ref: msg.ref, request: body.type }));
    }
    if (msg.type === 'token:refreshed') {
      if (body.type === 'token:refresh' && p.link) p.link.token = body.token;
      if (this._session) this._session = { ...this._session, exp: msg.exp, permissions: [...msg.permissions] };
      for (const room of msg.left) this.joined.delete(room);
      p.resolve(msg);
      this.emit('token:refreshed', msg);
      return;
    }
    if (msg.type !== 'ack') return p.resolve(msg);
    if (body.type === 'join') for (const room of (msg.result as AckResults['join']).rooms) this.joined.add(room);
    p.resolve(msg.result);
  }

  // ---- token refresh and liveness

  private async runRefresh(): Promise<TokenRefreshedMessage> {
    const link = this.link;
    if (!link || !link.session) throw new WsgateError(E.NOT_CONNECTED, `cannot refresh while ${this._state}`, { request: 'token:refresh' });
    let token: string;
    try {
      token = await this.opts.getToken();
    } catch (cause) {
      throw new WsgateError(E.TOKEN_SOURCE_FAILED, 'getToken failed', { request: 'token:refresh', cause });
    }
    if (link !== this.link) throw new WsgateError(E.DISCONNECTED, 'socket closed during getToken', { request: 'token:refresh' });
    if (token === link.token) throw new WsgateError(E.TOKEN_NOT_RENEWED, 'getToken returned the token in use', { request: 'token:refresh' });
    return this.internal(link, { type: 'token:refresh', token });
  }

  /**
   * token:expiring: refresh before `deadline` (the token's exp, on this machine's clock). What
   * can pass (getToken not renewed yet, a timeout, UNAVAILABLE) is retried until the deadline;
   * USER_MISMATCH and INVALID_TOKEN are reported and not retried (4006 follows the latter).
   */
  private autoRefresh(link: Link, deadline: number): void {
    clearTimeout(link.refreshTimer);
    this.refresh().catch((e: WsgateError) => {
      if (link !== this.link) return;
      this.emit('error', e);
      const left = deadline - Date.now();
      if (RETRYABLE_REFRESH.has(e.code) && left > 1000) {
        link.refreshTimer = setTimeout(() => this.autoRefresh(link, deadline), Math.min(5000, left / 2));
      }
    });
  }

  private heartbeat(link: Link): void {
    if (link !== this.link || link.pinging || Date.now() - link.lastSeen < this.opts.pingIntervalMs) return;
    link.pinging = true;
    this.internal(link, { type: 'ping' }).then(
      () => {
        link.pinging = false;
      },
      (e: WsgateError) => {
        link.pinging = false;
        if (e.code === E.TIMEOUT) this.drop(link, 'no reply to ping');
      },
    );
  }
}
