// A session's lifetime after the upgrade: token expiry (token:expiring, then close 4007 at exp +
// clock tolerance) on a coarse wheel, and slow consumers (close 4501), both on one sweep timer.
import { Close } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import { ExpiryWheel } from './expiry.js';
import type { Outbox } from './outbox.js';
import type { SocketPort } from './ports.js';
import type { Session } from './session.js';

export interface LifetimeOptions {
  readonly tokenExpiringSec: number;
  /** the clock tolerance: a token is closed at exp + this */
  readonly expiryGraceMs: number;
  readonly expirySweepMs: number;
  readonly maxBackpressureBytes: number;
}

export class Lifetime<S> {
  private readonly wheel: ExpiryWheel<Session<S>>;

  constructor(
    private readonly opts: LifetimeOptions,
    private readonly port: SocketPort<S>,
    private readonly outbox: Outbox<S>,
    private readonly metrics: Metrics,
    private readonly now: () => number,
  ) {
    this.wheel = new ExpiryWheel(opts.expirySweepMs, now());
  }

  get scheduled(): number {
    return this.wheel.size;
  }

  /** (Re)schedules the session's next expiry event: the warning, or the close once warned. */
  schedule(s: Session<S>): void {
    const expMs = s.exp * 1000;
    const o = this.opts;
    this.wheel.schedule(s, s.warned || o.tokenExpiringSec === 0 ? expMs + o.expiryGraceMs : expMs - o.tokenExpiringSec * 1000);
  }

  cancel(s: Session<S>): void {
    this.wheel.cancel(s);
  }

  /**
   * One sweep: slow consumers first (more than half the backpressure limit still buffered: closed
   * with 4501 before uWS has to drop anything; one native call per socket, a few ms per 100k
   * sockets), then the expiry wheel: warnings, and closes at exp + tolerance.
   */
  sweep(sessions: Iterable<Session<S>>): void {
    const now = this.now();
    const slow = this.opts.maxBackpressureBytes / 2;
    // Each session is contained: a failure on one closes that one (1011), the sweep goes on.
    for (const s of sessions) {
      try {
        if (s.socket !== undefined && this.port.buffered(s.socket) > slow) {
          this.metrics.slowConsumerCloses++;
          this.outbox.end(s, Close.SLOW_CONSUMER);
        }
      } catch (err) {
        this.outbox.fail(s, 'sweep', err);
      }
    }
    for (const s of this.wheel.due(now)) {
      try {
        this.expire(s, now);
      } catch (err) {
        this.outbox.fail(s, 'sweep', err);
      }
    }
  }

  private expire(s: Session<S>, now: number): void {
    if (s.closed || s.socket === undefined) return;
    const closeAt = s.exp * 1000 + this.opts.expiryGraceMs;
    if (now >= closeAt) {
      this.metrics.tokenExpiredCloses++;
      this.outbox.end(s, Close.TOKEN_EXPIRED);
      return;
    }
    if (!s.warned) {
      s.warned = true;
      this.outbox.sendLater(s, { type: 'token:expiring', exp: s.exp, in: Math.max(0, Math.round((s.exp * 1000 - now) / 1000)) });
    }
    this.wheel.schedule(s, closeAt);
  }
}
