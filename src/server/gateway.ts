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
import { PendingSockets } from './pending.js';
import type { HttpRequest, HttpResponse, TemplatedApp, Uws, WebSocket, us_listen_socket, us_socket_context_t } from './uws.js';

/** What uWS keeps per socket: the refusal (close mode) or the core's session. */
export interface SocketData {
  refusal: RefusalKind | undefined;
  conn: Session<WebSocket<SocketData>> | undefined;
  /** Upgraded inside res.cork after an await: open's sends wait for the next loop turn (see open()). */
  deferred: boolean;
  closed: boolean;
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
   * 'socket': the build has app.filter, so every accepted socket is counted from accept to its
   * upgrade or close (half-open requests included). 'upgrade': only requests whose headers are
   * complete are seen, from the upgrade handler to its answer (docs/SECURITY.md says what bounds
   * the rest on such builds).
   */
  readonly pendingMode: 'socket' | 'upgrade';
  /** sockets closed by the filter, whose close event must not be counted as a pending socket leaving */
  private readonly refusedByFilter = new Map<string, number>();
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
      close: (ws) => {
        const data = ws.getUserData();
        data.closed = true;
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

  get isDraining(): boolean {
    return this.draining;
  }

  /** uWS's socket filter (builds that have it): +1 when a socket is accepted, -1 when an HTTP socket closes. */
  private filtered(res: HttpResponse, count: number): void {
    const address = text(res.getRemoteAddressAsText());
    if (count > 0) {
      const verdict = this.deps.pending.enter(address);
      if (verdict === 'ok') return;
      this.deps.metrics.count(this.deps.metrics.pendingRefused, verdict);
      this.refusedByFilter.set(address, (this.refusedByFilter.get(address) ?? 0) + 1);
      res.close();
      return;
    }
    const skip = this.refusedByFilter.get(address);
    if (skip !== undefined) {
      if (skip > 1) this.refusedByFilter.set(address, skip - 1);
      else this.refusedByFilter.delete(address);
      return;
    }
    this.deps.pending.leave(address);
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

    if (this.draining) return this.refuse(res, Refusal.UNAVAILABLE, key, extensions, context);
    const offered = splitProtocols(request.protocols);
    const chosen = negotiate(offered);
    if (!chosen) {
      metrics.count(metrics.refusals, Refusal.BAD_SUBPROTOCOL.code);
      return this.refuse(res, Refusal.BAD_SUBPROTOCOL, key, extensions, context);
    }
    // Without a socket filter, the bound on pending sockets counts upgrades being authenticated.
    let address: string | undefined;
    if (this.pendingMode === 'upgrade') {
      address = text(res.getRemoteAddressAsText());
      const verdict = pending.enter(address);
      if (verdict !== 'ok') {
        metrics.count(metrics.pendingRefused, verdict);
        metrics.count(metrics.refusals, Refusal.UNAVAILABLE.code);
        return this.refuse(res, Refusal.UNAVAILABLE, key, extensions, context);
      }
    }
    const done = (): void => {
      if (address !== undefined) pending.leave(address);
      address = undefined;
    };
    const finish = (o: AuthOutcome, deferred: boolean): void => {
      done();
      if (!o.ok) return this.refuse(res, o.refusal, key, extensions, context, deferred);
      const capped = this.deps.hub.admit(o.claims);
      if (capped) {
        metrics.count(metrics.refusals, capped.code);
        return this.refuse(res, capped, key, extensions, context, deferred);
      }
      const conn = this.deps.hub.create(o.claims, chosen.encoding, chosen.protocol);
      metrics.upgradesAccepted++;
      const data: SocketData = { refusal: undefined, conn, deferred, closed: false };
      try {
        // The bearer.* entry is never echoed: only our subprotocol (or none) is.
        res.upgrade(data, key, chosen.protocol ?? '', extensions, context);
      } catch (err) {
        if (!data.closed) this.deps.hub.close(conn); // undo the session: its socket never opened
        throw err;
      }
    };
    let outcome: AuthOutcome | Promise<AuthOutcome>;
    try {
      outcome = this.deps.authenticator.authenticate(request, offered);
    } catch (err) {
      done();
      throw err;
    }
    if (!(outcome instanceof Promise)) return finish(outcome, false);

    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
      metrics.upgradesAborted++;
    });
    outcome
      .catch((err: unknown): AuthOutcome => {
        this.deps.faults.report('authenticate', err);
        return { ok: false, refusal: Refusal.INTERNAL };
      })
      .then((o) => {
        if (aborted) return;
        try {
          res.cork(() => finish(o, true));
        } catch (err) {
          done();
          this.upgradeFailed(res, err);
        }
      });
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

  private refuse(res: HttpResponse, refusal: RefusalKind, key: string, extensions: string, context: us_socket_context_t, deferred = false): void {
    if (this.deps.config.refusalMode === 'close' && key !== '') {
      const data: SocketData = { refusal, conn: undefined, deferred, closed: false };
      res.upgrade(data, key, '', extensions, context);
      return;
    }
    this.answer(res, refusal);
  }

  /** A refusal as an HTTP status with the JSON body { error, code }. */
  private answer(res: HttpResponse, refusal: RefusalKind): void {
    res.writeStatus(STATUS_TEXT[refusal.status] ?? `${refusal.status} Error`);
    res.writeHeader('content-type', 'application/json');
    res.writeHeader('cache-control', 'no-store');
    if (refusal.status === 401) res.writeHeader('www-authenticate', 'Bearer');
    if (refusal.status === 503 || refusal.status === 429) res.writeHeader('retry-after', String(RETRY_AFTER_SEC));
    res.end(REFUSAL_BODY.get(refusal)!);
  }

  private open(ws: WebSocket<SocketData>): void {
    // The socket has completed its upgrade: it no longer counts as pending (uWS's filter reports
    // no close for an upgraded socket, since the socket moved to the WebSocket context).
    if (this.pendingMode === 'socket') this.deps.pending.leave(text(ws.getRemoteAddressAsText()));
    const data = ws.getUserData();
    // After an async upgrade, uWS runs open inside the HTTP response's cork; frames written there
    // can be lost or the socket left corked (seen with upstream v20.57: ~1% of replies lost;
    // uWebSockets.js issue #1108). Such sockets start on the next loop turn, corked on their own.
    if (data.deferred) {
      setImmediate(() => {
        if (data.closed) return;
        try {
          ws.cork(() => this.start(ws, data));
        } catch (err) {
          this.socketFailed(ws, 'open', err);
        }
      });
      return;
    }
    this.start(ws, data);
  }

  private start(ws: WebSocket<SocketData>, data: SocketData): void {
    if (data.refusal) {
      // Close mode: a browser cannot read a refused upgrade's status, but it can read this.
      ws.end(data.refusal.close.code, data.refusal.close.reason);
      return;
    }
    if (data.conn) this.deps.hub.open(data.conn, ws);
  }

  /** A failure on a socket outside a session's request: that socket is closed with 1011. */
  private socketFailed(ws: WebSocket<SocketData>, where: string, err: unknown): void {
    const data = ws.getUserData();
    if (data.conn) return this.deps.hub.fail(data.conn, where, err);
    this.deps.faults.report(where, err);
    try {
      if (!data.closed) ws.end(Close.INTERNAL_ERROR.code, Close.INTERNAL_ERROR.reason);
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
