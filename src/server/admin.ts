// The server API's listener (docs/API.md): a uWS app of its own on WSGATE_ADMIN_HOST:WSGATE_ADMIN_PORT.
// A second app, not the client app on a second port: an app's routes answer on every port it
// listens on, so with one app /ws would answer here and /v1/* on the public port. Its own app also
// keeps these sockets out of the client listener's pending-socket bounds, and lets answers keep
// the connection alive (the client listener closes every answered connection).
//
// Per request: the Authorization header, query and address are copied out of uWS at once; the body
// (POST) is read up to the route's bound; then authentication (admin/auth.ts), the rate limits
// (admin/limiter.ts: per principal, and per address for failed authentications, checked before any
// verification), the route (admin/api.ts), and the answer inside res.cork. Containment as in
// server/http.ts: no exception leaves a callback; a failure answers 500 { error, code } and is
// counted in wsgate_internal_errors_total{where="admin"}.
import type { AdminApi, AdminReply, AdminRoute } from '../admin/api.js';
import { AdminRefusal } from '../admin/api.js';
import type { AdminAuth, AdminAuthOutcome } from '../admin/auth.js';
import type { NamedLimiter } from '../admin/limiter.js';
import type { Faults } from '../core/ports.js';
import { AdminError, RETRY_AFTER_SEC, type AdminErrorKind } from '../errors/codes.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { HttpRequest, HttpResponse, TemplatedApp, Uws, us_listen_socket } from './uws.js';

export interface AdminServerDeps {
  readonly uws: Uws;
  readonly host: string;
  readonly port: number;
  readonly api: AdminApi;
  readonly auth: AdminAuth;
  /** per principal */
  readonly limiter: NamedLimiter;
  /** failed authentications per address */
  readonly failures: NamedLimiter;
  readonly metrics: Metrics;
  readonly faults: Faults;
  readonly logger: Logger;
  readonly now?: () => number;
  /**
   * GET and HEAD /metrics on this listener (server/http.ts `metricsHandler`), outside the server
   * API's keys: a scraper needs no credential that can revoke tokens. With WSGATE_METRICS=off the
   * client port serves none and this listener is where Prometheus scrapes (docs/OPERATIONS.md).
   */
  readonly metricsRoute?: (res: HttpResponse, req: HttpRequest, method: 'get' | 'head') => void;
}

const STATUS: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 404: '404 Not Found', 405: '405 Method Not Allowed',
  413: '413 Payload Too Large', 429: '429 Too Many Requests', 500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

/** Seconds a rate-limited caller should wait. */
const RATE_RETRY_AFTER_SEC = 1;

interface Call {
  readonly res: HttpResponse;
  readonly route: AdminRoute;
  readonly authorization: string;
  readonly query: string;
  readonly address: string;
  aborted: boolean;
  answered: boolean;
  /** a body nobody reads (a GET with one): the connection closes with the answer */
  unread: boolean;
}

export class AdminServer {
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  private readonly now: () => number;
  port = 0;

  constructor(private readonly deps: AdminServerDeps) {
    this.now = deps.now ?? Date.now;
    this.app = deps.uws.App();
    const methods = new Map<string, AdminRoute[]>();
    for (const route of deps.api.routes()) {
      this.app[route.method](route.path, (res, req) => this.contained(res, () => this.request(route, res, req)));
      methods.set(route.path, [...(methods.get(route.path) ?? []), route]);
    }
    const metricsRoute = deps.metricsRoute;
    if (metricsRoute !== undefined) {
      this.app.get('/metrics', (res, req) => this.contained(res, () => metricsRoute(res, req, 'get')));
      this.app.head('/metrics', (res, req) => this.contained(res, () => metricsRoute(res, req, 'head')));
    }
    // uWS prefers a method's handler to `any` on the same path: these answer the other methods.
    for (const path of methods.keys()) this.app.any(path, (res) => this.contained(res, () => this.refuse(res, AdminError.METHOD_NOT_ALLOWED)));
    this.app.any('/*', (res) => this.contained(res, () => this.refuse(res, AdminError.NOT_FOUND)));
  }

  listen(): Promise<number> {
    const { host, port, uws } = this.deps;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`server API: cannot listen on ${host}:${port}`));
        this.listenSocket = socket;
        this.port = uws.us_socket_local_port(socket);
        resolve(this.port);
      });
    });
  }

  /** Stops listening and closes the connections it has (where the build can). */
  close(): void {
    if (this.listenSocket) {
      this.deps.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    (this.app as unknown as { close?: () => void }).close?.();
  }

  /** Runs a uWS callback's work; a failure answers 500 when the response is still ours. */
  private contained(res: HttpResponse, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failed(res, err);
    }
  }

  private failed(res: HttpResponse, err: unknown): void {
    this.deps.faults.report('admin', err);
    try {
      res.cork(() => this.write(res, errorReply(AdminError.INTERNAL), true));
    } catch {
      // already answered or aborted
    }
  }

  private request(route: AdminRoute, res: HttpResponse, req: HttpRequest): void {
    const call: Call = {
      res,
      route,
      authorization: req.getHeader('authorization'),
      query: req.getQuery() ?? '',
      address: Buffer.from(res.getRemoteAddressAsText()).toString('latin1'),
      aborted: false,
      answered: false,
      unread: false,
    };
    res.onAborted(() => {
      call.aborted = true;
    });
    // Before anything is verified: an address that keeps failing is slowed down here.
    if (!this.deps.failures.allows(call.address, this.now())) return this.finish(call, errorReply(AdminError.RATE_LIMITED), true);
    const declared = req.getHeader('content-length');
    if (route.method !== 'post') {
      call.unread = (declared !== '' && declared !== '0') || req.getHeader('transfer-encoding') !== '';
      return this.start(call, undefined);
    }
    if (declared !== '' && !(Number(declared) <= route.maxBody)) return this.finish(call, errorReply(AdminError.PAYLOAD_TOO_LARGE), true);
    // Authenticated while the body arrives: a caller without a valid credential is answered 401 (and
    // its connection closed) at once, not after a body it may trickle until uWS's timeout (red team:
    // 2000 never-finished 17 KB bodies with a wrong key held ~18 MB per worker for 10 s).
    const auth = this.authenticate(call);
    auth.then(
      (outcome) => {
        if (!outcome.ok && !call.answered && !call.aborted) this.finish(call, this.refused(call, outcome), true);
      },
      () => undefined,
    );
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (call.answered) return;
      size += chunk.byteLength;
      if (size > route.maxBody) return this.finish(call, errorReply(AdminError.PAYLOAD_TOO_LARGE), true);
      chunks.push(Buffer.from(chunk.slice(0))); // a copy: the chunk is only valid during this call
      if (isLast) this.start(call, Buffer.concat(chunks), auth);
    });
  }

  private authenticate(call: Call): Promise<AdminAuthOutcome> {
    return Promise.resolve().then(() => this.deps.auth.authenticate(call.authorization));
  }

  private start(call: Call, body: Buffer | undefined, auth: Promise<AdminAuthOutcome> = this.authenticate(call)): void {
    this.run(call, body, auth).catch((err: unknown) => this.failed(call.res, err));
  }

  private async run(call: Call, body: Buffer | undefined, auth: Promise<AdminAuthOutcome>): Promise<void> {
    let reply: AdminReply;
    let principal = '';
    try {
      const outcome = await auth;
      if (call.answered) return; // refused while the body was arriving
      if (!outcome.ok) reply = this.refused(call, outcome);
      else if (!this.deps.limiter.take((principal = outcome.principal), this.now())) reply = errorReply(AdminError.RATE_LIMITED);
      else reply = await call.route.handle({ query: call.query, body, principal });
    } catch (err) {
      if (err instanceof AdminRefusal) reply = errorReply(err.kind);
      else {
        this.deps.faults.report('admin', err);
        reply = errorReply(AdminError.INTERNAL);
      }
    }
    if (call.route.mutates && principal !== '') {
      // the audit trail: who did what (the reply names the target; a publish's data is not in it)
      this.deps.logger.info({ principal, route: call.route.path, status: reply.status, reply: reply.body }, 'server API call');
    }
    this.finish(call, reply, call.unread);
  }

  private refused(call: Call, outcome: Extract<AdminAuthOutcome, { ok: false }>): AdminReply {
    this.deps.metrics.count(this.deps.metrics.authFailures, `admin-${outcome.reason}`);
    this.deps.failures.take(call.address, this.now());
    return errorReply(outcome.error);
  }

  /** 404 and 405: answered at once, the body (if any) unread, so the connection closes. */
  private refuse(res: HttpResponse, kind: AdminErrorKind): void {
    this.deps.metrics.count(this.deps.metrics.adminRequests, kind.code);
    this.write(res, errorReply(kind), true);
  }

  /** Writes the reply once, if the client is still there. `close`: the request's body may be unread, the connection cannot be reused. */
  private finish(call: Call, reply: AdminReply, close: boolean): void {
    if (call.answered) return;
    call.answered = true;
    const body = reply.body as { code?: unknown } | undefined;
    this.deps.metrics.count(this.deps.metrics.adminRequests, reply.status === 200 ? 'OK' : typeof body?.code === 'string' ? body.code : String(reply.status));
    if (call.aborted) return;
    try {
      call.res.cork(() => this.write(call.res, reply, close));
    } catch (err) {
      this.deps.faults.report('admin', err);
    }
  }

  private write(res: HttpResponse, reply: AdminReply, close: boolean): void {
    res.writeStatus(STATUS[reply.status] ?? `${reply.status} Error`);
    if (reply.status === 429) res.writeHeader('retry-after', String(RATE_RETRY_AFTER_SEC));
    else if (reply.status === 503) res.writeHeader('retry-after', String(RETRY_AFTER_SEC));
    if (reply.status === 401) res.writeHeader('www-authenticate', 'Bearer');
    res.writeHeader('cache-control', 'no-store');
    if (reply.text) {
      res.writeHeader('content-type', reply.text.contentType);
      res.end(reply.text.body, close);
    } else {
      res.writeHeader('content-type', 'application/json');
      res.end(JSON.stringify(reply.body), close);
    }
  }
}

const errorReply = (kind: AdminErrorKind): AdminReply => ({ status: kind.status, body: { error: kind.error, code: kind.code } });
