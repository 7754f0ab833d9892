// The HTTP routes of the client listener: liveness, readiness, metrics, and 404 for the rest.
// Each handler is contained: a failure answers 500 and is counted, never more.
import type { Faults } from '../core/ports.js';
import type { Metrics } from '../observability/metrics.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

export interface HttpDeps {
  readonly app: TemplatedApp;
  readonly metrics: Metrics;
  readonly faults: Faults;
  /** GET /healthz body */
  readonly health: () => Record<string, unknown>;
  /** Reasons the node is not ready (empty: ready), e.g. Redis unreachable or draining. */
  readonly notReady: () => Promise<string[]>;
  /** Called once per request when it is answered or aborted: its socket (from `address`) stops counting as pending (server/gateway.ts). */
  readonly answered: (address: string) => void;
}

// Every answer closes its connection: on the client listener no socket outlives the pending-socket
// count of its one request (server/gateway.ts), and monitoring clients lose only a TCP handshake.
function json(res: HttpResponse, status: string, body: unknown): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body), true);
}

function failed(deps: HttpDeps, res: HttpResponse, where: string, err: unknown): void {
  deps.faults.report(where, err);
  try {
    res.cork(() => json(res, '500 Internal Server Error', { error: 'Internal error', code: 'INTERNAL' }));
  } catch {
    // already answered or aborted
  }
}

export function registerRoutes(deps: HttpDeps): void {
  const { app } = deps;
  const route = (method: 'get' | 'head' | 'any', path: string, where: string, handler: (res: HttpResponse, done: () => void) => void): void => {
    app[method](path, (res) => {
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
        handler(res, done);
      } catch (err) {
        failed(deps, res, where, err);
        done();
      }
    });
  };
  route('get', '/healthz', 'http-healthz', (res, done) => {
    json(res, '200 OK', deps.health());
    done();
  });
  // HEAD: the status only (probes that do not read bodies)
  route('head', '/healthz', 'http-healthz', (res, done) => {
    res.writeStatus('200 OK').endWithoutBody(0, true);
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
        res.cork(() => (withBody ? json(res, status, { ready: reasons.length === 0, reasons }) : res.writeStatus(status).endWithoutBody(0, true)));
        done();
      })
      .catch((err: unknown) => {
        failed(deps, res, 'http-readyz', err);
        done();
      });
  };
  route('get', '/readyz', 'http-readyz', readyz(true));
  route('head', '/readyz', 'http-readyz', readyz(false));
  route('get', '/metrics', 'http-metrics', (res, done) => {
    const body = deps.metrics.render(); // before anything is written: a failure can still answer 500
    res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4').end(body, true);
    done();
  });
  route('any', '/*', 'http-404', (res, done) => {
    json(res, '404 Not Found', { error: 'Not found', code: 'NOT_FOUND' });
    done();
  });
}
