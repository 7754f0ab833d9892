// A session's lifetime after the upgrade: token expiry (token:expiring, then close 4007 at exp +
// clock tolerance) and slow consumers (close 4501), both checked by one sweep over the live
// sessions every WSGATE_EXPIRY_SWEEP_MS. The sweep already visits every session for its buffered
// amount, so expiry costs one comparison there and nothing at open or close (an expiry wheel of
// per-bucket sets cost a set insertion at every open and a removal at every close).
import { Close } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { Outbox } from './outbox.js';
import type { SocketPort } from './ports.js';
import type { Session } from './session.js';

export interface LifetimeOptions {
  readonly tokenExpiringSec: number;
  /** the clock tolerance: a token is closed at exp + this */
  readonly expiryGraceMs: number;
  readonly maxBackpressureBytes: number;
}

export class Lifetime<S> {
  constructor(
    private readonly opts: LifetimeOptions,
    private readonly port: SocketPort<S>,
    private readonly outbox: Outbox<S>,
    private readonly metrics: Metrics,
    private readonly now: () => number,
  ) {}

  /**
   * One sweep: slow consumers (more than half the backpressure limit still buffered: closed with
   * 4501 before uWS has to drop anything; one native call per socket, a few ms per 100k sockets),
   * then expiry: the warning WSGATE_TOKEN_EXPIRING_SEC before exp, the close at exp + tolerance.
   * Each session is contained: a failure on one closes that one (1011), the sweep goes on.
   */
  sweep(sessions: Iterable<Session<S>>): void {
    const now = this.now();
    const slow = this.opts.maxBackpressureBytes / 2;
    const warnBeforeMs = this.opts.tokenExpiringSec * 1000;
    const graceMs = this.opts.expiryGraceMs;
    for (const s of sessions) {
      try {
        if (s.socket === undefined) continue;
        if (this.port.buffered(s.socket) > slow) {
          this.metrics.slowConsumerCloses++;
          this.outbox.end(s, Close.SLOW_CONSUMER);
          continue;
        }
        const expMs = s.exp * 1000;
        if (now >= expMs + graceMs) {
          this.metrics.tokenExpiredCloses++;
          this.outbox.end(s, Close.TOKEN_EXPIRED);
        } else if (!s.warned && warnBeforeMs > 0 && now >= expMs - warnBeforeMs) {
          s.warned = true;
          this.outbox.sendLater(s, { type: 'token:expiring', exp: s.exp, in: Math.max(0, Math.round((expMs - now) / 1000)) });
        }
      } catch (err) {
        this.outbox.fail(s, 'sweep', err);
      }
    }
  }
}
