// The uWS adapter for WebSockets: the authenticated upgrade and the socket events. It copies what
// it needs out of uWS and hands the rest to the core (Authenticator, Hub); the rules live there.
//
// Containment: no exception from a uWS callback reaches the process. A failure while handling one
// socket closes that socket with 1011; a failure while deciding one upgrade answers it with 500;
// both are counted in wsgate_internal_errors_total{where} and logged with their stack.
import type { AuthOutcome } from '../auth/authenticate.js';
import { splitProtocols, type UpgradeRequest } from '../auth/extract.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Config } from '../config/config.js';
import type { Faults, Hub, Session } from '../core/hub.js';
import { Close, RETRY_AFTER_SEC, Refusal, type CloseKind, type RefusalKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import { negotiate } from '../protocol/codec.js';
import type { Encoding } from '../protocol/messages.js';
import { PendingSockets } from './pending.js';
import type { HttpRequest, HttpResponse, TemplatedApp, Uws, WebSocket, us_listen_socket, us_socket_context_t } from './uws.js';

/**
 * What uWS keeps per socket: the refusal (close mode) or the core's session. uWS hands open and
 * close a shallow copy of this object: state that both must see lives in the session.
 */
export interface SocketData {
  readonly refusal: RefusalKind | undefined;
  conn: Session<WebSocket<SocketData>> | undefined;
  /** Async upgrades: the connected frame, encoded before res.cork; open only sends it. */
  readonly connected: Buffer | undefined;
}

/** An authentication outcome, with the deployment-cap reservation it holds (when caps are configured). */
type Decided = AuthOutcome & { readonly reserved?: boolean };

/** An upgrade being decided: what uWS needs to answer it, copied out of the request. */
interface Upgrading {
  readonly res: HttpResponse;
  readonly key: string;
  readonly extensions: string;
  readonly context: us_socket_context_t;
  /** our subprotocol when the client offered it, else '' */
  readonly protocol: string;
  address?: string;
  /** the socket still holds a pending count (released once, by release()) */
  counted?: boolean;
}

export interface GatewayDeps {
  readonly config: Config;
  readonly uws: Uws;
  readonly app: TemplatedApp;
  readonly authenticator: Authenticator;
  readonly hub: Hub<WebSocket<SocketData>>;
  readonly metrics: Metrics;
  readonly faults: Faults;
  /** bounds on sockets that have not completed an upgrade */
  readonly pending: PendingSockets;
}

const STATUS_TEXT: Record<number, string> = { 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable' };

// Refusal bodies are built once: a refusal storm allocates nothing per request.
const REFUSAL_BODY = new Map<RefusalKind, string>(Object.values(Refusal).map((r) => [r, JSON.stringify({ error: r.error, code: r.code })]));

const text = (ab: ArrayBuffer): string => Buffer.from(ab).toString('latin1');

export class Gateway {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  private draining = false;
  /**
   * 'socket': the build has app.filter, so every accepted socket is counted from accept until its
   * first request is answered (the answer closes the connection) or upgraded, or it closes before
   * that (half-open requests included). 'upgrade': only requests whose headers are complete are
   * seen, from the upgrade handler to its answer (docs/SECURITY.md says what bounds the rest on
   * such builds).
   */
  readonly pendingMode: 'socket' | 'upgrade';
  /** the socket whose open ran last: an async upgrade's open runs inside res.upgrade, inside res.cork */
  private opened: WebSocket<SocketData> | undefined;
  port = 0;

  constructor(private readonly deps: GatewayDeps) {
    const { uws, config } = deps;
    this.app = deps.app;
    // The type declarations always have filter; the compat build's binary does not.
    const filter = (this.app as unknown as { filter?: (cb: (res: HttpResponse, count: number) => void) => unknown }).filter;
    this.pendingMode = typeof filter === 'function' ? 'socket' : 'upgrade';
    if (typeof filter === 'function') {
      filter.call(this.app, (res, count) => {
        try {
          this.filtered(res, count);
        } catch (err) {
          deps.faults.report('filter', err);
        }
      });
    }
    this.app.ws<SocketData>('/ws', {
      compression: uws.DISABLED,
      maxPayloadLength: config.maxPayloadBytes,
      idleTimeout: config.idleTimeoutSec,
      // A socket over the limit is skipped by publishes until the next sweep closes it with 4501
      // (core/lifetime.ts): closing at the limit inside uWS would be abrupt (no close code) and uncounted.
      maxBackpressure: config.maxBackpressureBytes,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        try {
          this.upgrade(res, req, context);
        } catch (err) {
          this.upgradeFailed(res, err);
        }
      },
      open: (ws) => {
        try {
          this.open(ws);
        } catch (err) {
          this.socketFailed(ws, 'open', err);
        }
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (conn === undefined) return;
        try {
          deps.hub.message(conn, message, isBinary);
        } catch (err) {
          deps.hub.fail(conn, 'message', err);
        }
      },
      close: (ws, code, message) => {
        if (code === 1006) this.countDrop(message);
        const data = ws.getUserData();
        const conn = data.conn;
        data.conn = undefined;
        if (conn === undefined) return;
        try {
          deps.hub.close(conn);
        } catch (err) {
          deps.faults.report('close', err);
        }
      },
    });
  }

  /**
   * uWS drops a connection without a close frame (the client sees 1006) for protocol violations it
   * handles itself: a text frame that is not UTF-8, a frame over the payload limit, a malformed
   * frame, inactivity. Its reason reaches the close handler; count it (a client simply going away
   * is not counted).
   */
  private countDrop(message: ArrayBuffer): void {
    if (message.byteLength === 0) return;
    const why = Buffer.from(message).toString('latin1');
    const reason = why.includes('UTF-8') ? 'invalid-utf8' : why.includes('too big') ? 'too-big' : why.includes('inactivity') ? 'idle-timeout' : why.includes('invalid WebSocket frame') || why.includes('close payload') ? 'bad-frame' : undefined;
    if (reason !== undefined) this.deps.metrics.count(this.deps.metrics.protocolDrops, reason);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * uWS's socket filter (builds that have it): called with +1 when a socket is accepted and -1 when
   * an HTTP socket closes. At -1 the socket no longer has an address (measured on upstream v20.57),
   * so the count is released elsewhere, exactly once per accepted socket: by the onAborted set here
   * when the socket closes before any answer (uWS clears it once a response ends), by the answer of
   * an HTTP route or a refused upgrade (answers close the connection, so no socket outlives its
   * count), or by the upgrade.
   */
  private filtered(res: HttpResponse, count: number): void {
    if (count < 0) return;
    const address = text(res.getRemoteAddressAsText());
    const verdict = this.deps.pending.enter(address);
    if (verdict !== 'ok') {
      this.deps.metrics.count(this.deps.metrics.pendingRefused, verdict);
      res.close();
      return;
    }
    res.onAborted(() => this.deps.pending.leave(address));
  }

  /** An HTTP route answered a request from `address` (and closes the connection): the socket stops counting as pending. */
  answered(address: string): void {
    if (this.pendingMode === 'socket') this.deps.pending.leave(address);
  }

  /**
   * The async upgrade (uWS examples/UpgradeAsync.js): copy what we need out of the request
   * (it lives on the stack only during this call), attach onAborted before any await, never
   * touch an aborted response, and upgrade or refuse inside cork.
   */
  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const request: UpgradeRequest = {
      url: req.getUrl(),
      query: req.getQuery() ?? '',
      authorization: req.getHeader('authorization'),
      protocols: req.getHeader('sec-websocket-protocol'),
      cookie: req.getHeader('cookie'),
      origin: req.getHeader('origin'),
      host: req.getHeader('host'),
    };
    const key = req.getHeader('sec-websocket-key');
    const extensions = req.getHeader('sec-websocket-extensions');
    const { metrics, pending } = this.deps;
    const offered = splitProtocols(request.protocols);
    const chosen = negotiate(offered);
    // Close-mode refusals echo our subprotocol: a client that offered one fails a handshake
    // without it (and would see 1006 instead of the 40xx code).
    const protocol = chosen?.protocol ?? '';
    const upgrading: Upgrading = { res, key, extensions, context, protocol };

    // The socket's pending count: taken at accept by the filter ('socket' mode), or here ('upgrade').
    const address = text(res.getRemoteAddressAsText());
    upgrading.address = address;
    upgrading.counted = this.pendingMode === 'socket';
    if (this.draining) return this.refuse(upgrading, Refusal.UNAVAILABLE);
    if (!chosen) {
      metrics.count(metrics.refusals, Refusal.BAD_SUBPROTOCOL.code);
      return this.refuse(upgrading, Refusal.BAD_SUBPROTOCOL);
    }
    if (this.pendingMode === 'upgrade') {
      const verdict = pending.enter(address);
      if (verdict !== 'ok') {
        metrics.count(metrics.pendingRefused, verdict);
        metrics.count(metrics.refusals, Refusal.UNAVAILABLE.code);
        return this.refuse(upgrading, Refusal.UNAVAILABLE);
      }
      upgrading.counted = true;
    }
    const done = (): void => this.release(upgrading);
    let outcome: Decided | Promise<Decided>;
    try {
      outcome = this.deps.authenticator.authenticate(request, offered);
      // Deployment-wide caps: a reservation in the store after authentication (one round trip, batched)
      if (this.deps.hub.reserves) outcome = outcome instanceof Promise ? outcome.then((o) => this.reserve(o)) : this.reserve(outcome);
    } catch (err) {
      done();
      throw err;
    }
    if (!(outcome instanceof Promise)) return void this.finish(upgrading, outcome, chosen, false);

    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
      metrics.upgradesAborted++;
    });
    outcome
      .catch((err: unknown): Decided => {
        this.deps.faults.report('authenticate', err);
        return { ok: false, refusal: Refusal.INTERNAL };
      })
      .then((o) => {
        if (aborted) {
          if (o.ok && o.reserved) this.deps.hub.unreserve(o.claims);
          return;
        }
        let conn: Session<WebSocket<SocketData>> | undefined;
        this.opened = undefined;
        try {
          res.cork(() => {
            conn = this.finish(upgrading, o, chosen, true);
          });
        } catch (err) {
          done();
          this.upgradeFailed(res, err);
        }
        // After res.cork has returned: the session's bookkeeping (docs/UWS-1928.md: nothing that
        // allocates natively may run inside the cork after the upgrade).
        const ws = this.opened;
        this.opened = undefined;
        if (conn === undefined) return;
        if (ws !== undefined && !conn.closed) {
          try {
            this.deps.hub.open(conn, ws, true);
          } catch (err) {
            this.socketFailed(ws, 'open', err);
          }
        }
        // uWebSockets #1928 (fixed by uWebSockets PR #1929, in neither build we ship): after an
        // async upgrade, res.cork's epilogue can read the response state from freed memory and
        // close the new socket. The client got the 101 and its connected frame, then 1006, and
        // reconnects. Nothing in JS prevents it (docs/UWS-1928.md); it is counted.
        if (conn.closed) this.deps.metrics.upgradesClosedByUws++;
      });
  }

  /**
   * The deployment-cap reservation of an authenticated upgrade: the per-node caps first (no round
   * trip for a connection this node would refuse anyway), then the store.
   */
  private reserve(o: Decided): Decided | Promise<Decided> {
    if (!o.ok) return o;
    const { metrics, hub } = this.deps;
    const local = hub.admit(o.claims);
    if (local) return o; // finish refuses it
    const refused = (r: RefusalKind | undefined): Decided => {
      if (r === undefined) return { ...o, reserved: true };
      metrics.count(metrics.refusals, r.code);
      return { ok: false, refusal: r };
    };
    const r = hub.reserve(o.claims);
    return r instanceof Promise ? r.then(refused) : refused(r);
  }

  /**
   * The upgrade decided: refused, or upgraded with a new session (returned). `async`: inside
   * res.cork after an await; the connected frame is then encoded here, before the upgrade, and
   * open only sends it.
   */
  private finish(u: Upgrading, o: Decided, chosen: { encoding: Encoding; protocol: string | undefined }, async: boolean): Session<WebSocket<SocketData>> | undefined {
    const { metrics, hub } = this.deps;
    if (!o.ok) return void this.refuse(u, o.refusal);
    const capped = hub.admit(o.claims);
    if (capped) {
      if (o.reserved) hub.unreserve(o.claims);
      metrics.count(metrics.refusals, capped.code);
      return void this.refuse(u, capped);
    }
    const conn = hub.create(o.claims, chosen.encoding, chosen.protocol, o.reserved === true);
    metrics.upgradesAccepted++;
    const data: SocketData = { refusal: undefined, conn, connected: async ? hub.connectedFrame(conn) : undefined };
    try {
      // The bearer.* entry is never echoed: only our subprotocol (or none) is.
      u.res.upgrade(data, u.key, u.protocol, u.extensions, u.context);
    } catch (err) {
      if (!conn.closed) hub.close(conn); // undo the session: its socket never opened
      throw err;
    }
    this.release(u);
    return conn;
  }

  /** The upgrade was answered or upgraded (or aborted): its socket stops counting as pending. Once. */
  private release(u: Upgrading): void {
    if (!u.counted || u.address === undefined) return;
    u.counted = false;
    this.deps.pending.leave(u.address);
  }

  /** A failure while deciding an upgrade: counted, logged, answered 500 when the response is still ours. */
  private upgradeFailed(res: HttpResponse, err: unknown): void {
    this.deps.faults.report('upgrade', err);
    try {
      res.cork(() => this.answer(res, Refusal.INTERNAL));
    } catch {
      // already answered, upgraded or aborted: nothing more to say on it
    }
  }

  private refuse(u: Upgrading, refusal: RefusalKind): void {
    if (this.deps.config.refusalMode === 'close' && u.key !== '') {
      const data: SocketData = { refusal, conn: undefined, connected: undefined };
      u.res.upgrade(data, u.key, u.protocol, u.extensions, u.context);
      this.release(u);
      return;
    }
    this.answer(u.res, refusal);
    this.release(u);
  }

  /** A refusal as an HTTP status with the JSON body { error, code }. */
  private answer(res: HttpResponse, refusal: RefusalKind): void {
    res.writeStatus(STATUS_TEXT[refusal.status] ?? `${refusal.status} Error`);
    res.writeHeader('content-type', 'application/json');
    res.writeHeader('cache-control', 'no-store');
    if (refusal.status === 401) res.writeHeader('www-authenticate', 'Bearer');
    if (refusal.status === 503 || refusal.status === 429) res.writeHeader('retry-after', String(RETRY_AFTER_SEC));
    // The connection closes with the answer: a refused client has nothing more to say on it, and
    // no socket outlives its pending count.
    res.end(REFUSAL_BODY.get(refusal)!, true);
  }

  /**
   * uWS runs open inside res.upgrade. After an async upgrade that is inside res.cork: open then only
   * sends the pre-encoded connected frame (it leaves with the 101 in one send()) and the session's
   * bookkeeping runs once res.cork has returned (docs/UWS-1928.md). After a synchronous upgrade the
   * session opens here.
   */
  private open(ws: WebSocket<SocketData>): void {
    const data = ws.getUserData();
    if (data.refusal) {
      // Close mode: a browser cannot read a refused upgrade's status, but it can read this.
      ws.end(data.refusal.close.code, data.refusal.close.reason);
      return;
    }
    if (data.conn === undefined) return;
    if (data.connected === undefined) return this.deps.hub.open(data.conn, ws);
    ws.send(data.connected, data.conn.encoding === 'msgpack');
    this.opened = ws;
  }

  /** A failure on a socket outside a session's request (open): that socket is closed with 1011. */
  private socketFailed(ws: WebSocket<SocketData>, where: string, err: unknown): void {
    this.deps.faults.report(where, err);
    try {
      if (ws.getUserData().conn?.closed !== true) ws.end(Close.INTERNAL_ERROR.code, Close.INTERNAL_ERROR.reason);
    } catch {
      // the socket is already gone
    }
  }

  listen(): Promise<number> {
    const { host, port } = this.deps.config;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port}`));
        this.listenSocket = socket;
        this.port = this.deps.uws.us_socket_local_port(socket);
        resolve(this.port);
      });
    });
  }

  /** Graceful shutdown: stop accepting, then close every socket with a reconnect code. */
  shutdown(close: CloseKind = Close.SHUTDOWN): void {
    this.draining = true;
    if (this.listenSocket) {
      this.deps.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    this.deps.hub.closeAll(close);
  }
}
