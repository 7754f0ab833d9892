// Refused upgrades in the log, for the operator who wants to know who is refused and why: the
// refusal code and status the client got, the reason (why its token failed verification, which
// bound was reached: never told to the client), its source address and the transport its token
// came in. Never the token: the reason is one of a fixed set of words, and nothing of the request
// but the address (and, for an origin refusal, the Origin header, cut to 200 characters) is logged.
// Sampled (observability/sampler.ts): a refusal flood costs a clock read per refusal and at most
// `perSec` lines a second; the next line says how many were left out.
import type { TokenSource } from '../auth/extract.js';
import type { Logger } from './logger.js';
import { LogSampler } from './sampler.js';

export class RefusalLog {
  private readonly sampler: LogSampler;

  constructor(
    private readonly logger: Logger,
    perSec: number,
    now: () => number = Date.now,
  ) {
    this.sampler = new LogSampler(perSec, now);
  }

  /**
   * An upgrade answered with a refusal (an HTTP status, or a 4xxx close in close mode). `address`
   * may be a function: read only for the lines that are written (a refusal flood reads none).
   */
  upgrade(code: string, status: number, reason: string, address: string | (() => string), source: TokenSource | 'none' | undefined, origin?: string): void {
    const suppressed = this.sampler.take();
    if (suppressed === undefined) return;
    if (typeof address === 'function') {
      try {
        address = address();
      } catch {
        address = '';
      }
    }
    this.write(
      {
        code,
        status,
        reason,
        address,
        ...(source !== undefined ? { source } : {}),
        ...(origin !== undefined ? { origin: origin.slice(0, 200) } : {}),
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      'upgrade refused',
    );
  }

  /** A socket closed at accept, before any request, because a pending-socket bound was reached. */
  socket(reason: string, address: string): void {
    const suppressed = this.sampler.take();
    if (suppressed === undefined) return;
    this.write({ reason, address, ...(suppressed > 0 ? { suppressed } : {}) }, 'socket refused');
  }

  /** Logging must never be what fails an upgrade. */
  private write(fields: Record<string, unknown>, msg: string): void {
    try {
      this.logger.info(fields, msg);
    } catch {
      // the refusal is counted in /metrics either way
    }
  }
}
