// Contained failures: counted by where they happened (wsgate_internal_errors_total{where}) and
// logged with their stack. Logging is rate limited (a client that found a way to make one request
// fail could otherwise fill the disk): at most `maxLogsPerSec` lines a second, and the next line
// after a quiet spell says how many were suppressed. Never throws.
import type { Faults } from '../core/ports.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { LogSampler } from './sampler.js';

export class FaultReporter implements Faults {
  private readonly sampler: LogSampler;

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    maxLogsPerSec = 10,
    now: () => number = Date.now,
  ) {
    this.sampler = new LogSampler(maxLogsPerSec, now);
  }

  report(where: string, err: unknown): void {
    try {
      this.metrics.count(this.metrics.internalErrors, where);
      const suppressed = this.sampler.take();
      if (suppressed === undefined) return;
      this.logger.error({ where, err: err instanceof Error ? err : new Error(String(err)), ...(suppressed > 0 ? { suppressed } : {}) }, 'internal error contained');
    } catch {
      // reporting must never be the thing that fails
    }
  }
}
