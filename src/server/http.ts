// The HTTP routes of the client listener: liveness, readiness, metrics, and 404 for the rest.
// Each handler is contained: a failure answers 500 and is counted, never more.
import type { Faults } from '../core/ports.js';
import type { Metrics } from '../observability/metrics.js';
import type { HttpResponse, TemplatedApp } from './uws.js';

export interface HttpDeps {
  readonly app: TemplatedApp;
  readonly metrics: Metrics;
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
  const route = (method: 'get' | 'any', path: string, where: string, handler: (res: HttpResponse, done: () => void) => void): void => {
    app[method](path, (res) => {
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
        failed(deps, res, where, err);
        done();
      },
    );
  };
  route('get', '/healthz', 'http-healthz', (res, done) => answer(res, done, 'http-healthz', deps.health, (body) => json(res, '200 OK', body)));
  route('get', '/readyz', 'http-readyz', (res, done) => {
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
        res.cork(() => json(res, reasons.length === 0 ? '200 OK' : '503 Service Unavailable', { ready: reasons.length === 0, reasons }));
        done();
      })
      .catch((err: unknown) => {
        failed(deps, res, 'http-readyz', err);
        done();
      });
  });
  const metricsText = deps.metricsText ?? (() => deps.metrics.render());
  route('get', '/metrics', 'http-metrics', (res, done) =>
    answer(res, done, 'http-metrics', metricsText, (body) => res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4').end(body, true)),
  );
  route('any', '/*', 'http-404', (res, done) => {
    json(res, '404 Not Found', { error: 'Not found', code: 'NOT_FOUND' });
    done();
  });
}
