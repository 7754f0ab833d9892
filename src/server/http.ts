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
}

function json(res: HttpResponse, status: string, body: unknown): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
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
  const route = (path: string, where: string, handler: (res: HttpResponse) => void): void => {
    app.get(path, (res) => {
      try {
        handler(res);
      } catch (err) {
        failed(deps, res, where, err);
      }
    });
  };
  route('/healthz', 'http-healthz', (res) => json(res, '200 OK', deps.health()));
  route('/readyz', 'http-readyz', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    deps
      .notReady()
      .catch((e: unknown) => [String(e)])
      .then((reasons) => {
        if (aborted) return;
        res.cork(() => json(res, reasons.length === 0 ? '200 OK' : '503 Service Unavailable', { ready: reasons.length === 0, reasons }));
      })
      .catch((err: unknown) => failed(deps, res, 'http-readyz', err));
  });
  route('/metrics', 'http-metrics', (res) => {
    const body = deps.metrics.render(); // before anything is written: a failure can still answer 500
    res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4').end(body);
  });
  app.any('/*', (res) => {
    try {
      json(res, '404 Not Found', { error: 'Not found', code: 'NOT_FOUND' });
    } catch (err) {
      failed(deps, res, 'http-404', err);
    }
  });
}
