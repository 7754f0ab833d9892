// The HTTP routes of the client listener: liveness, readiness, metrics, and 404 for the rest.
// Each handler is contained: a failure answers 500 and is counted, never more.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MetricsAccess } from '../config/config.js';
import type { Faults } from '../core/ports.js';
import type { Metrics } from '../observability/metrics.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

export interface HttpDeps {
  readonly app: TemplatedApp;
  readonly metrics: Metrics;
  /** who may read /metrics here (WSGATE_METRICS) and the bearer token of 'token' */
  readonly metricsAccess: { readonly mode: MetricsAccess; readonly token: string | undefined };
  readonly faults: Faults;
  /** GET /healthz body (a promise with workers: the supervisor's view of every worker) */
  readonly health: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** GET /metrics text; default: `metrics.render()` (with workers: every worker's, from the supervisor) */
  readonly metricsText?: () => string | Promise<string>;
  /** Reasons the node is not ready (empty: ready), e.g. Redis unreachable or draining. */
  readonly notReady: () => Promise<string[]>;
  /** Called once per request when it is answered or aborted: its socket (from `address`) stops counting as pending (server/gateway.ts). */
  readonly answered: (address: string) => void;
}

// Every answer closes its connection: on the client listener no socket outlives the pending-socket
// count of its one request (server/gateway.ts), and monitoring clients lose only a TCP handshake.
function json(res: HttpResponse, status: string, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store');
  for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
  res.end(JSON.stringify(body), true);
}

function failed(faults: Faults, res: HttpResponse, where: string, err: unknown): void {
  faults.report(where, err);
  try {
    res.cork(() => json(res, '500 Internal Server Error', { error: 'Internal error', code: 'INTERNAL' }));
  } catch {
    // already answered or aborted
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A check of `Authorization: Bearer <token>` in constant time (over SHA-256 digests: equal lengths whatever was sent). */
export function bearerCheck(token: string): (authorization: string) => boolean {
  const want = digest(token);
  return (authorization) => {
    if (authorization.length < 7 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(digest(authorization.slice(7).trim()), want);
  };
}

/**
 * GET /metrics on any listener: the text exposition, behind a bearer token when one is given. The
 * client port registers it below (WSGATE_METRICS); an admin listener can register the same handler.
 * `done` runs once, when the request was answered or aborted.
 */
export function metricsHandler(
  metrics: Metrics,
  faults: Faults,
  token: string | undefined,
  /** the exposition text; default: this process's (with workers: the host's, from the supervisor) */
  text: () => string | Promise<string> = () => metrics.render(),
): (res: HttpResponse, req: HttpRequest, done: () => void, method?: 'get' | 'head') => void {
  const allowed = token === undefined ? undefined : bearerCheck(token);
  return (res, req, done, method = 'get') => {
    if (allowed !== undefined && !allowed(req.getHeader('authorization'))) {
      json(res, '401 Unauthorized', { error: 'Unauthorized', code: 'UNAUTHORIZED' }, { 'www-authenticate': 'Bearer realm="metrics"' });
      return done();
    }
    if (method === 'head') {
      // what a GET would answer, without rendering anything
      res.writeStatus('200 OK').writeHeader('content-type', metrics.contentType).writeHeader('cache-control', 'no-store').endWithoutBody(0, true);
      return done();
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
    });
    Promise.resolve()
      .then(text)
      .then((body) => {
        if (aborted) return;
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', metrics.contentType).writeHeader('cache-control', 'no-store').end(body, true));
        done();
      })
      .catch((err: unknown) => {
        if (aborted) return;
        failed(faults, res, 'http-metrics', err);
        done();
      });
  };
}

export function registerRoutes(deps: HttpDeps): void {
  const { app } = deps;
  const route = (method: 'get' | 'head' | 'any', path: string, where: string, handler: (res: HttpResponse, done: () => void, req: HttpRequest) => void): void => {
    app[method](path, (res, req) => {
      // uWS aborts the whole process when a handler returns without answering and without an
      // abort handler: one is attached before anything can fail (a handler that waits replaces it).
      res.onAborted(() => undefined);
      const address = Buffer.from(res.getRemoteAddressAsText()).toString('latin1'); // not readable once aborted
      let released = false;
      const done = (): void => {
        if (released) return;
        released = true;
        deps.answered(address);
      };
      try {
        handler(res, done, req);
      } catch (err) {
        failed(deps.faults, res, where, err);
        done();
      }
    });
  };
  /** Answers with `body()` now, or once its promise settles (unless the client went away meanwhile). */
  const answer = <T>(res: HttpResponse, done: () => void, where: string, body: () => T | Promise<T>, write: (v: T) => void): void => {
    const v = body(); // before anything is written: a failure can still answer 500
    if (!(v instanceof Promise)) {
      write(v);
      return done();
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
    });
    v.then(
      (x) => {
        if (aborted) return;
        res.cork(() => write(x));
        done();
      },
      (err: unknown) => {
        if (aborted) return;
        failed(deps.faults, res, where, err);
        done();
      },
    );
  };
  route('get', '/healthz', 'http-healthz', (res, done) => answer(res, done, 'http-healthz', deps.health, (body) => json(res, '200 OK', body)));
  // HEAD: the status only (probes that do not read bodies)
  route('head', '/healthz', 'http-healthz', (res, done) => {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').endWithoutBody(0, true);
    done();
  });
  // readiness waits on the stores: answered once they do (or the client went away)
  const readyz = (withBody: boolean) => (res: HttpResponse, done: () => void): void => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      done();
    });
    deps
      .notReady()
      .catch((e: unknown) => [String(e)])
      .then((reasons) => {
        if (aborted) return;
        const status = reasons.length === 0 ? '200 OK' : '503 Service Unavailable';
        res.cork(() => (withBody ? json(res, status, { ready: reasons.length === 0, reasons }) : res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').endWithoutBody(0, true)));
        done();
      })
      .catch((err: unknown) => {
        failed(deps.faults, res, 'http-readyz', err);
        done();
      });
  };
  route('get', '/readyz', 'http-readyz', readyz(true));
  route('head', '/readyz', 'http-readyz', readyz(false));
  if (deps.metricsAccess.mode !== 'off') {
    const serve = metricsHandler(deps.metrics, deps.faults, deps.metricsAccess.mode === 'token' ? deps.metricsAccess.token : undefined, deps.metricsText);
    route('get', '/metrics', 'http-metrics', (res, done, req) => serve(res, req, done, 'get'));
    route('head', '/metrics', 'http-metrics', (res, done, req) => serve(res, req, done, 'head'));
  }
  route('any', '/*', 'http-404', (res, done) => {
    json(res, '404 Not Found', { error: 'Not found', code: 'NOT_FOUND' });
    done();
  });
}
