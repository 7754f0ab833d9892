// The uWS adapter for WebSockets: the authenticated upgrade and the socket events. It copies what
// it needs out of uWS and hands the rest to the core (Authenticator, Hub); the rules live there.
//
// Containment: no exception from a uWS callback reaches the process. A failure while handling one
// socket closes that socket with 1011; a failure while deciding one upgrade answers it with 500;
// both are counted in wsgate_internal_errors_total{where} and logged with their stack.
import type { AuthOutcome } from '../auth/authenticate.js';
import { splitProtocols, type TokenSource, type UpgradeRequest } from '../auth/extract.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Config } from '../config/config.js';
import type { Faults, Hub, Session } from '../core/hub.js';
import { Close, RETRY_AFTER_SEC, Refusal, type CloseKind, type RefusalKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { RefusalLog } from '../observability/refusals.js';
import { negotiate } from '../protocol/codec.js';
import type { Encoding } from '../protocol/messages.js';
import type { AppSlot, Apps, SocketData } from './apps.js';
import { PendingSockets } from './pending.js';
import type { TlsOptions } from './tls.js';
import type { HttpRequest, HttpResponse, TemplatedApp, Uws, WebSocket, us_listen_socket, us_socket_context_t } from './uws.js';

export type { SocketData } from './apps.js';

/** An authentication outcome after the caps: `held`, the host counted it (workers) and it must become a session or be given back. */
/**
 * An authentication outcome after the caps: `held`, the host counted it (workers); `reserved`, it
 * holds a deployment-cap reservation (Redis). Either must become a session or be given back.
 */
type Decision = (AuthOutcome & { readonly ok: false }) | (AuthOutcome & { readonly ok: true; readonly held: boolean; readonly reserved: boolean });

/** An upgrade being decided: what uWS needs to answer it, copied out of the request. */
interface Upgrading {
  readonly res: HttpResponse;
  readonly key: string;
  readonly extensions: string;
  readonly context: us_socket_context_t;
  /** our subprotocol when the client offered it, else '' */
  readonly protocol: string;
  readonly origin: string;
  /** the app that took the request */
  readonly slot: AppSlot;
  /** performance.now() at the upgrade handler's entry */
  readonly t0: number;
  address?: string;
  /** the socket still holds a pending count (released once, by release()) */
  counted?: boolean;
}

export interface GatewayDeps {
  readonly config: Config;
  readonly uws: Uws;
  /** the apps the gateway creates (one; a new one per TLS reload) */
  readonly apps: Apps;
  readonly authenticator: Authenticator;
  readonly hub: Hub<WebSocket<SocketData>>;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly refusals: RefusalLog;
  /** bounds on sockets that have not completed an upgrade */
  readonly pending: PendingSockets;
  /** registers the HTTP routes on an app (server/http.ts) */
  readonly routes: (app: TemplatedApp) => void;
  /** TLS: uWS's SSL options (the first certificate); undefined: plain TCP */
  readonly tls: TlsOptions | undefined;
}

const STATUS_TEXT: Record<number, string> = { 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found', 429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable' };

// Refusal bodies are built once: a refusal storm allocates nothing per request.
const REFUSAL_BODY = new Map<RefusalKind, string>(Object.values(Refusal).map((r) => [r, JSON.stringify({ error: r.error, code: r.code })]));

const text = (ab: ArrayBuffer): string => Buffer.from(ab).toString('latin1');

/**
 * Copies what authentication needs out of the request (it lives on the stack only during the
 * handler), reading every header line once: getHeader would return the first of repeated lines
 * only, and a second Authorization, Cookie or Sec-WebSocket-Protocol line carrying another token
 * would go unseen (a proxy may read another line than the gateway: the docs call for a conflict).
 */
function readUpgrade(req: HttpRequest): UpgradeRequest {
  let authorization = '';
  let protocols = '';
  let cookie = '';
  let origin = '';
  let host = '';
  let ambiguous = false;
  req.forEach((name, value) => {
    switch (name) {
      case 'authorization':
        if (authorization !== '' && authorization !== value) ambiguous = true;
        authorization ||= value;
        return;
      case 'sec-websocket-protocol':
        protocols = protocols === '' ? value : `${protocols}, ${value}`;
        return;
      case 'cookie':
        cookie = cookie === '' ? value : `${cookie}; ${value}`;
        return;
      case 'origin':
        if (origin !== '' && origin !== value) ambiguous = true;
        origin ||= value;
        return;
      case 'host':
        if (host !== '' && host !== value) ambiguous = true;
        host ||= value;
        return;
    }
  });
  return { url: req.getUrl(), query: req.getQuery() ?? '', authorization, protocols, cookie, origin, host, ambiguous };
}

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: SO_REUSEADDR without SO_REUSEPORT. */
const EXCLUSIVE_PORT = 1;

export class Gateway {
  /** /readyz answers 503 (a drain began: the grace period for the load balancer) */
  private draining = false;
  /** upgrades are taken (false once the listen socket is closed) */
  private accepting = true;
  /**
   * 'socket': the build has app.filter, so every accepted socket is counted from accept until its
   * first request is answered (the answer closes the connection) or upgraded, or it closes before
   * that (half-open requests included). 'upgrade': only requests whose headers are complete are
   * seen, from the upgrade handler to its answer (docs/SECURITY.md says what bounds the rest on
   * such builds).
   */
  pendingMode: 'socket' | 'upgrade' = 'upgrade';
  /** the socket whose open ran last: an async upgrade's open runs inside res.upgrade, inside res.cork */
  private opened: WebSocket<SocketData> | undefined;
  port = 0;

  /** Makes the first app (an SSLApp with `deps.tls`); listen() starts it. */
  constructor(private readonly deps: GatewayDeps) {
    this.createApp(deps.tls);
  }

  /** A new app (SSLApp with `tls`) with the gateway's handlers and the HTTP routes, made the current one. */
  private createApp(tls: TlsOptions | undefined): AppSlot {
    const { uws, config, hub, apps } = this.deps;
    const app = tls === undefined ? uws.App() : uws.SSLApp(tls);
    const slot = apps.add(app);
    // The type declarations always have filter; the compat build's binary does not.
    const filter = (app as unknown as { filter?: (cb: (res: HttpResponse, count: number) => void) => unknown }).filter;
    this.pendingMode = typeof filter === 'function' ? 'socket' : 'upgrade';
    if (typeof filter === 'function') {
      filter.call(app, (res, count) => {
        try {
          this.filtered(res, count);
        } catch (err) {
          this.deps.faults.report('filter', err);
        }
      });
    }
    app.ws<SocketData>('/ws', {
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
          this.upgrade(res, req, context, slot);
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
          hub.message(conn, message, isBinary);
        } catch (err) {
          hub.fail(conn, 'message', err);
        }
      },
      // Pings and pongs are charged like other frames (uWS answers pings itself).
      ping: (ws, message) => this.control(ws, message),
      pong: (ws, message) => this.control(ws, message),
      close: (ws, code, message) => {
        apps.closed(slot);
        if (code === 1006) this.countDrop(message);
        const data = ws.getUserData();
        const conn = data.conn;
        data.conn = undefined;
        if (conn === undefined) return;
        try {
          hub.close(conn);
        } catch (err) {
          this.deps.faults.report('close', err);
        }
      },
    });
    this.deps.routes(app);
    return slot;
  }

  private control(ws: WebSocket<SocketData>, message: ArrayBuffer): void {
    const conn = ws.getUserData().conn;
    if (conn === undefined) return;
    try {
      this.deps.hub.pingPong(conn, message.byteLength + 2);
    } catch (err) {
      this.deps.hub.fail(conn, 'control', err);
    }
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
      this.deps.refusals.socket(`pending-${verdict}`, address);
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
  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, slot: AppSlot): void {
    const t0 = performance.now();
    const request = readUpgrade(req);
    const key = req.getHeader('sec-websocket-key');
    const extensions = req.getHeader('sec-websocket-extensions');
    const { metrics, pending } = this.deps;
    const offered = splitProtocols(request.protocols);
    const chosen = negotiate(offered);
    // Close-mode refusals echo our subprotocol: a client that offered one fails a handshake
    // without it (and would see 1006 instead of the 40xx code).
    const protocol = chosen?.protocol ?? '';
    const upgrading: Upgrading = { res, key, extensions, context, protocol, origin: request.origin, slot, t0 };

    // The socket's pending count: taken at accept by the filter ('socket' mode: released here,
    // once the upgrade is decided), or below for an upgrade that must wait ('upgrade' mode: an
    // upgrade decided synchronously is never pending).
    if (this.pendingMode === 'socket') {
      upgrading.address = text(res.getRemoteAddressAsText());
      upgrading.counted = true;
    }
    // During a drain, an upgrade still arriving came on a socket accepted before the listen socket
    // closed: it is served like any other (the drain closes it with the rest, 4500), not refused.
    if (!chosen) {
      metrics.count(metrics.refusals, Refusal.BAD_SUBPROTOCOL.code);
      return this.refuse(upgrading, Refusal.BAD_SUBPROTOCOL, 'subprotocol', undefined);
    }
    const done = (): void => this.release(upgrading);
    let outcome: Decision | Promise<Decision>;
    try {
      const auth = this.deps.authenticator.authenticate(request, offered);
      outcome = auth instanceof Promise ? auth.then((o) => this.admitted(o)) : this.admitted(auth);
      // Deployment-wide caps: a reservation in the store after the node's own caps (one round trip, batched)
      if (this.deps.hub.reserves) outcome = outcome instanceof Promise ? outcome.then((o) => this.reserve(o)) : this.reserve(outcome);
    } catch (err) {
      done();
      throw err;
    }
    if (!(outcome instanceof Promise)) return void this.finish(upgrading, outcome, chosen, false);
    if (this.pendingMode === 'upgrade') {
      const address = text(res.getRemoteAddressAsText());
      const verdict = pending.enter(address);
      if (verdict !== 'ok') {
        outcome.then((o) => this.giveBack(o), () => undefined); // its answer is not wanted any more
        metrics.count(metrics.pendingRefused, verdict);
        metrics.count(metrics.refusals, Refusal.UNAVAILABLE.code);
        upgrading.address = address;
        return this.refuse(upgrading, Refusal.UNAVAILABLE, `pending-${verdict}`, undefined);
      }
      upgrading.address = address;
      upgrading.counted = true;
    }

    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
      metrics.upgradesAborted++;
    });
    outcome
      .catch((err: unknown): Decision => {
        this.deps.faults.report('authenticate', err);
        return { ok: false, refusal: Refusal.INTERNAL, reason: 'internal', source: undefined };
      })
      .then((o) => {
        if (aborted) {
          this.giveBack(o);
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
        this.deps.metrics.upgradeSeconds.async.observe((performance.now() - upgrading.t0) / 1000);
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
   * The connection caps after a successful authentication: checked here (a single process), or
   * counted by the host (workers: a promise, one in-host round trip).
   */
  private admitted(o: AuthOutcome): Decision | Promise<Decision> {
    if (!o.ok) return o;
    // counted by this process: finish() checks the caps right before create (no await in between)
    if (!this.deps.hub.admitsAsync) return { ...o, held: false, reserved: false };
    const verdict = (capped: RefusalKind | undefined): Decision => {
      if (!capped) return { ...o, held: true, reserved: false };
      this.deps.metrics.count(this.deps.metrics.refusals, capped.code);
      return { ok: false, refusal: capped, reason: capped === Refusal.UNAVAILABLE ? 'node-full' : 'connection-cap', source: o.source };
    };
    const capped = this.deps.hub.admit(o.claims);
    return capped instanceof Promise ? capped.then(verdict) : verdict(capped);
  }

  /**
   * The deployment-cap reservation of an authenticated upgrade: the per-node caps first (no round
   * trip for a connection this node would refuse anyway), then the store.
   */
  private reserve(o: Decision): Decision | Promise<Decision> {
    if (!o.ok) return o;
    const { metrics, hub } = this.deps;
    if (!o.held && hub.admit(o.claims)) return o; // finish refuses it
    const refused = (r: RefusalKind | undefined): Decision => {
      if (r === undefined) return { ...o, reserved: true };
      this.giveBack(o);
      metrics.count(metrics.refusals, r.code);
      return { ok: false, refusal: r, reason: 'deployment-cap', source: o.source };
    };
    const r = hub.reserve(o.claims);
    return r instanceof Promise ? r.then(refused) : refused(r);
  }

  /** An admitted upgrade that will not become a session: its host count and reservation are given back. */
  private giveBack(o: Decision): void {
    if (!o.ok) return;
    if (o.held) this.deps.hub.unadmit(o.claims);
    if (o.reserved) this.deps.hub.unreserve(o.claims);
  }

  /**
   * The upgrade decided: refused, or upgraded with a new session (returned). `async`: inside
   * res.cork after an await; the connected frame is then encoded here, before the upgrade, and
   * open only sends it.
   */
  private finish(u: Upgrading, o: Decision, chosen: { encoding: Encoding; protocol: string | undefined }, async: boolean): Session<WebSocket<SocketData>> | undefined {
    const { metrics, hub } = this.deps;
    if (!o.ok) return void this.refuse(u, o.refusal, o.reason, o.source);
    if (!o.held) {
      // counted here (a single process): checked right before create, in the same turn
      const capped = hub.admit(o.claims) as RefusalKind | undefined;
      if (capped) {
        this.giveBack(o);
        metrics.count(metrics.refusals, capped.code);
        return void this.refuse(u, capped, capped === Refusal.UNAVAILABLE ? 'node-full' : 'connection-cap', o.source);
      }
    }
    let conn: Session<WebSocket<SocketData>>;
    try {
      conn = hub.create(o.claims, chosen.encoding, chosen.protocol, o.reserved);
    } catch (err) {
      this.giveBack(o);
      throw err;
    }
    metrics.upgradesAccepted++;
    const data: SocketData = { refusal: undefined, conn, connected: async ? hub.connectedFrame(conn) : undefined, app: u.slot };
    this.upgradeSocket(u, data);
    // open ran inside res.upgrade. Request to open, ~125 ns with the clock reads; an async upgrade's is
    // observed once res.cork has returned (upgrade()): no code may run in the cork after the upgrade
    // that did not before (docs/UWS-1928.md: in a fresh process, 6 of 30 first async upgrades were
    // closed by uWS when this observation ran there, 0 of 30 without it, upstream v20.57).
    if (!async) metrics.upgradeSeconds.sync.observe((performance.now() - u.t0) / 1000);
    this.release(u);
    return conn;
  }

  /**
   * res.upgrade, the socket counted on its app first: uWS runs open inside res.upgrade, and for an
   * async upgrade inside res.cork, where nothing new may run after the upgrade (docs/UWS-1928.md).
   */
  private upgradeSocket(u: Upgrading, data: SocketData): void {
    this.deps.apps.opened(u.slot);
    try {
      // The bearer.* entry is never echoed: only our subprotocol (or none) is.
      u.res.upgrade(data, u.key, u.protocol, u.extensions, u.context);
    } catch (err) {
      this.deps.apps.closed(u.slot); // its socket never opened
      if (data.conn !== undefined && !data.conn.closed) this.deps.hub.close(data.conn); // undo the session
      throw err;
    }
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
      // already answered, upgraded or aborted: nothing more to say on it. Should it be none of
      // those, uWS would abort the process when the handler returns without an answer or an abort
      // handler: one is attached (it throws when the response is already done, which is fine).
      try {
        res.onAborted(() => undefined);
      } catch {
        // the response is done
      }
    }
  }

  /** `reason` and `source` go to the (sampled) log only. */
  private refuse(u: Upgrading, refusal: RefusalKind, reason: string, source: TokenSource | 'none' | undefined): void {
    this.deps.refusals.upgrade(refusal.code, refusal.status, reason, u.address ?? (() => text(u.res.getRemoteAddressAsText())), source, reason === 'origin' ? u.origin : undefined);
    if (this.deps.config.refusalMode === 'close' && u.key !== '') {
      this.upgradeSocket(u, { refusal, conn: undefined, connected: undefined, app: u.slot });
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

  /**
   * Listens on `port` (never 0: see server/listen.ts). `shared`: with SO_REUSEPORT, so that the
   * other workers of the host listen on the same port, and so that a TLS reload can listen a second
   * time on it; otherwise exclusively (SO_REUSEADDR only: a second process on the port fails instead
   * of silently taking half the connections).
   */
  listen(port: number, shared: boolean): Promise<number> {
    const { host } = this.deps.config;
    const { uws } = this.deps;
    const slot = this.deps.apps.current!;
    return new Promise((resolve, reject) => {
      const done = (socket: us_listen_socket | false): void => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port}${shared ? '' : ' (in use?)'}`));
        slot.listenSocket = socket;
        this.port = uws.us_socket_local_port(socket);
        resolve(this.port);
      };
      if (shared) slot.app.listen(host, port, done);
      // The four-argument form (host, port, options) exists in both builds' binaries; their type
      // declarations lack it. LIBUS_LISTEN_EXCLUSIVE_PORT = 1 (ListenOptions in the declarations).
      else (slot.app.listen as unknown as (h: string, p: number, o: number, cb: typeof done) => void).call(slot.app, host, port, EXCLUSIVE_PORT, done);
    });
  }

  /**
   * A new certificate without dropping a connection: a new SSLApp with it listens on the same port
   * (uSockets sets SO_REUSEPORT on a listen socket of a fixed port, on both builds), then the old
   * app's listen socket is closed. The old app keeps its sockets until they close (server/apps.ts).
   * Throws, and leaves the old listener as it was, when the new app cannot be made or cannot listen
   * (a listen socket made without SO_REUSEPORT: main.ts listens shared whenever TLS is configured).
   */
  reloadTls(tls: TlsOptions): void {
    if (this.draining) throw new Error('draining');
    const current = this.deps.apps.current;
    if (current?.listenSocket === undefined) throw new Error('not listening');
    let slot: AppSlot;
    try {
      slot = this.createApp(tls);
    } catch (e) {
      throw new Error(`uWS could not make an SSL app of the files: ${(e as Error).message}`);
    }
    let listened = false;
    slot.app.listen(this.deps.config.host, this.port, (socket) => {
      if (!socket) return;
      slot.listenSocket = socket;
      listened = true;
    });
    if (!listened) {
      this.deps.apps.abandon(slot);
      throw new Error(`cannot listen on ${this.deps.config.host}:${this.port} a second time`);
    }
    for (const old of this.deps.apps.older()) {
      if (old.listenSocket !== undefined) this.deps.uws.us_listen_socket_close(old.listenSocket);
      old.listenSocket = undefined;
      this.deps.apps.prune(old);
    }
  }

  /** A drain began: /readyz answers 503; upgrades are still taken until stopAccepting(). */
  beginDrain(): void {
    this.draining = true;
  }

  /** Closes the listen sockets: no new connection reaches this process (the ones it accepted are still served). */
  stopAccepting(): void {
    this.draining = true;
    this.accepting = false;
    for (const slot of [...this.deps.apps.all()]) {
      if (slot.listenSocket !== undefined) this.deps.uws.us_listen_socket_close(slot.listenSocket);
      slot.listenSocket = undefined;
    }
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  /** Stops accepting and closes every socket with a reconnect code at once. */
  shutdown(close: CloseKind = Close.SHUTDOWN): void {
    this.stopAccepting();
    this.deps.hub.closeAll(close);
  }
}
