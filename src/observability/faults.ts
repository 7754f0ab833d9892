// Contained failures: counted by where they happened (wsgate_internal_errors_total{where}) and
// logged with their stack. Logging is rate limited (a client that found a way to make one request
// fail could otherwise fill the disk): at most `maxLogsPerSec` lines a second, and the next line
// after a quiet spell says how many were suppressed. Never throws.
import type { Faults } from '../core/ports.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export class FaultReporter implements Faults {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly maxLogsPerSec = 10,
    private readonly now: () => number = Date.now,
  ) {}

  report(where: string, err: unknown): void {
    try {
      this.metrics.count(this.metrics.internalErrors, where);
      const t = this.now();
      if (t - this.windowStart >= 1000) {
        this.windowStart = t;
        this.logged = 0;
      }
      if (this.logged >= this.maxLogsPerSec) {
        this.suppressed++;
        return;
      }
      this.logged++;
      const suppressed = this.suppressed;
      this.suppressed = 0;
      this.logger.error({ where, err: err instanceof Error ? err : new Error(String(err)), ...(suppressed > 0 ? { suppressed } : {}) }, 'internal error contained');
    } catch {
      // reporting must never be the thing that fails
    }
  }
}
