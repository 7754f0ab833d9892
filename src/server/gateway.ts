// The uWS adapter: HTTP routes, the authenticated upgrade, and socket events. It translates
// uWS callbacks into calls on the core (Authenticator, ConnectionRegistry, the Hub) and
// performs their effects; the rules themselves live in the pure modules.
import { Authenticator, type AuthOutcome } from '../auth/authenticate.js';
import { splitProtocols, type UpgradeRequest } from '../auth/extract.js';
import type { Config } from '../config/config.js';
import { Close, RETRY_AFTER_SEC, Refusal, type CloseKind, type RefusalKind } from '../errors/codes.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { negotiate } from '../protocol/codec.js';
import type { Hub, Connection, SocketPort } from '../core/hub.js';
import type { HttpResponse, TemplatedApp, Uws, UwsInfo, WebSocket, us_listen_socket, us_socket_context_t } from './uws.js';

/** What uWS keeps per socket: the refusal (close mode) or the core's connection. */
export interface SocketData {
  refusal: RefusalKind | undefined;
  conn: Connection<WebSocket<SocketData>> | undefined;
  /** Upgraded inside res.cork after an await: open's sends wait for the next loop turn (see open()). */
  deferred: boolean;
  closed: boolean;
}

export interface GatewayDeps {
  readonly config: Config;
  readonly uws: Uws;
  readonly app: TemplatedApp;
  readonly uwsInfo: UwsInfo;
  readonly authenticator: Authenticator;
  readonly hub: Hub<WebSocket<SocketData>>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Reasons the node is not ready (empty: ready), e.g. Redis unreachable. */
  readonly notReady: () => Promise<string[]>;
}

const STATUS_TEXT: Record<number, string> = { 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 429: '429 Too Many Requests', 503: '503 Service Unavailable' };

// Refusal bodies are built once: a refusal storm allocates nothing per request.
const REFUSAL_BODY = new Map<RefusalKind, string>(Object.values(Refusal).map((r) => [r, JSON.stringify({ error: r.error, code: r.code })]));

export class Gateway {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  private draining = false;
  readonly startedAt = Date.now();
  port = 0;

  constructor(private readonly deps: GatewayDeps) {
    const { uws, config } = deps;
    this.app = deps.app;
    this.app.ws<SocketData>('/ws', {
      compression: uws.DISABLED,
      maxPayloadLength: config.maxPayloadBytes,
      idleTimeout: config.idleTimeoutSec,
      // A socket over the limit is skipped by publishes until the next sweep closes it with 4501
      // (Hub.sweep): closing at the limit inside uWS would be abrupt (no close code) and uncounted.
      maxBackpressure: config.maxBackpressureBytes,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (conn) deps.hub.message(conn, message, isBinary);
      },
      close: (ws, code) => {
        const data = ws.getUserData();
        data.closed = true;
        if (data.conn) deps.hub.close(data.conn, code);
        data.conn = undefined;
      },
    });
    this.app.get('/healthz', (res) => this.json(res, '200 OK', this.health()));
    this.app.get('/readyz', (res) => this.ready(res));
    this.app.get('/metrics', (res) => {
      res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4').end(deps.metrics.render());
    });
    this.app.any('/*', (res) => this.json(res, '404 Not Found', { error: 'Not found', code: 'NOT_FOUND' }));
  }

  health(): Record<string, unknown> {
    return {
      status: 'ok',
      node: this.deps.config.nodeId,
      uws: { build: this.deps.uwsInfo.build, version: this.deps.uwsInfo.version, package: this.deps.uwsInfo.package },
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      connections: this.deps.hub.size,
      draining: this.draining,
    };
  }

  private json(res: HttpResponse, status: string, body: unknown): void {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
  }

  private ready(res: HttpResponse): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const check = this.draining ? Promise.resolve(['draining']) : this.deps.notReady();
    check
      .catch((e: unknown) => [String(e)])
      .then((reasons) => {
        if (aborted) return;
        res.cork(() => this.json(res, reasons.length === 0 ? '200 OK' : '503 Service Unavailable', { ready: reasons.length === 0, reasons }));
      });
  }

  /**
   * The async upgrade (uWS examples/UpgradeAsync.js): copy what we need out of the request
   * (it lives on the stack only during this call), attach onAborted before any await, never
   * touch an aborted response, and upgrade or refuse inside cork.
   */
  private upgrade(res: HttpResponse, req: import('./uws.js').HttpRequest, context: us_socket_context_t): void {
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

    if (this.draining) return this.refuse(res, Refusal.UNAVAILABLE, key, extensions, context);
    const offered = splitProtocols(request.protocols);
    const chosen = negotiate(offered);
    if (!chosen) {
      this.deps.metrics.count(this.deps.metrics.refusals, Refusal.BAD_SUBPROTOCOL.code);
      return this.refuse(res, Refusal.BAD_SUBPROTOCOL, key, extensions, context);
    }
    const outcome = this.deps.authenticator.authenticate(request, offered);
    const finish = (o: AuthOutcome, deferred: boolean): void => {
      if (!o.ok) return this.refuse(res, o.refusal, key, extensions, context, deferred);
      const capped = this.deps.hub.admit(o.claims);
      if (capped) {
        this.deps.metrics.count(this.deps.metrics.refusals, capped.code);
        return this.refuse(res, capped, key, extensions, context, deferred);
      }
      const conn = this.deps.hub.create(o.claims, chosen.encoding, chosen.protocol);
      this.deps.metrics.upgradesAccepted++;
      const data: SocketData = { refusal: undefined, conn, deferred, closed: false };
      // The bearer.* entry is never echoed: only our subprotocol (or none) is.
      res.upgrade(data, key, chosen.protocol ?? '', extensions, context);
    };
    if (!(outcome instanceof Promise)) return finish(outcome, false);

    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      this.deps.metrics.upgradesAborted++;
    });
    outcome.then(
      (o) => {
        if (aborted) return;
        res.cork(() => finish(o, true));
      },
      (err: unknown) => {
        this.deps.logger.error({ err }, 'upgrade authentication crashed');
        if (aborted) return;
        res.cork(() => this.refuse(res, Refusal.UNAVAILABLE, key, extensions, context, true));
      },
    );
  }

  private refuse(res: HttpResponse, refusal: RefusalKind, key: string, extensions: string, context: us_socket_context_t, deferred = false): void {
    if (this.deps.config.refusalMode === 'close' && key !== '') {
      const data: SocketData = { refusal, conn: undefined, deferred, closed: false };
      res.upgrade(data, key, '', extensions, context);
      return;
    }
    res.writeStatus(STATUS_TEXT[refusal.status] ?? `${refusal.status} Error`);
    res.writeHeader('content-type', 'application/json');
    res.writeHeader('cache-control', 'no-store');
    if (refusal.status === 401) res.writeHeader('www-authenticate', 'Bearer');
    if (refusal.status === 503 || refusal.status === 429) res.writeHeader('retry-after', String(RETRY_AFTER_SEC));
    res.end(REFUSAL_BODY.get(refusal)!);
  }

  private open(ws: WebSocket<SocketData>): void {
    const data = ws.getUserData();
    // After an async upgrade, uWS runs open inside the HTTP response's cork; frames written there
    // can be lost or the socket left corked (seen with upstream v20.57: ~1% of replies lost;
    // uWebSockets.js issue #1108). Such sockets start on the next loop turn, corked on their own.
    if (data.deferred) {
      setImmediate(() => {
        if (!data.closed) ws.cork(() => this.start(ws, data));
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

/** The Hub's SocketPort over uWS. */
export function uwsPort(app: TemplatedApp): SocketPort<WebSocket<SocketData>> {
  return {
    send: (ws, data, binary) => ws.send(data, binary),
    subscribe: (ws, topic) => void ws.subscribe(topic),
    unsubscribe: (ws, topic) => void ws.unsubscribe(topic),
    end: (ws, code, reason) => ws.end(code, reason),
    // ws.publish reaches every subscriber but the publishing socket itself; uWS v20.30 delivers
    // nothing from a socket that is not subscribed, so it is used only when the sender is.
    publish: (topic, data, binary, exclude) =>
      void (exclude !== undefined && exclude.isSubscribed(topic) ? exclude.publish(topic, data, binary) : app.publish(topic, data, binary)),
    cork: (ws, fn) => void ws.cork(fn),
    buffered: (ws) => ws.getBufferedAmount(),
  };
}
