// The graceful drain (docs/WORKERS.md#drain): a node leaves without a reconnect stampede.
//
//   t = 0              /readyz answers 503 (draining); upgrades are still taken
//   t = grace          the listen socket closes: the load balancer (or, with workers, the kernel's
//                      SO_REUSEPORT group) sends new connections elsewhere; an upgrade still
//                      arriving on a socket accepted before is served, and closed with the rest
//   grace .. +spread   open connections are closed with 4500 (reconnect with backoff) in batches:
//                      by time t, ceil(n * (t - grace) / spread) of the n that were open are closed,
//                      so clients come back at a steady rate instead of all in the same second
//   then               the caller clears the node's registry and presence and exits
//
// hurry() (a second signal, stop()) skips what is left of the grace and closes the rest at once.
import { Close } from '../errors/codes.js';

export interface DrainPlan {
  /** seconds between /readyz turning 503 and the listen socket closing */
  readonly graceSec: number;
  /** seconds over which open connections are closed (0: at once) */
  readonly spreadSec: number;
}

export interface DrainTarget {
  beginDrain(): void;
  stopAccepting(): void;
}

export interface DrainSessions {
  readonly size: number;
  closeSome(n: number, kind?: typeof Close.SHUTDOWN): number;
}

export interface DrainReport {
  /** connections open when the listen socket closed */
  readonly open: number;
  readonly closed: number;
  /** ms from the start to the listen socket closing, and to the last connection closed */
  readonly acceptedUntilMs: number;
  readonly doneMs: number;
  /** connections closed in each second of the spread (index 0 = the first second after the grace) */
  readonly perSecond: number[];
  /** sessions still open when the drain gave up on them (their socket would not close: a failure contained elsewhere) */
  readonly left: number;
}

/** Batches run every TICK_MS at most: 10 batches a second spread 10k connections 1k a second in steps of 100. */
const TICK_MS = 100;
/** After the spread, closes are retried this long before the drain ends without the sessions left. */
const FINAL_MS = 2000;

export class Drain {
  private wake: (() => void) | undefined;
  private hurried = false;

  constructor(
    private readonly target: DrainTarget,
    private readonly sessions: DrainSessions,
    private readonly log: (msg: string, fields: Record<string, unknown>) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Skips the rest of the grace and closes every connection left at once. */
  hurry(): void {
    this.hurried = true;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.hurried || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  async run(plan: DrainPlan): Promise<DrainReport> {
    const t0 = this.now();
    this.target.beginDrain();
    this.log('drain: not ready (503), still accepting', { graceSec: plan.graceSec, spreadSec: plan.spreadSec, connections: this.sessions.size });
    await this.sleep(plan.graceSec * 1000);
    this.target.stopAccepting();
    const start = this.now();
    const open = this.sessions.size;
    this.log('drain: listen socket closed; closing connections', { connections: open, spreadSec: plan.spreadSec });
    const spreadMs = plan.spreadSec * 1000;
    const perSecond: number[] = [];
    let closed = 0;
    const count = (n: number): void => {
      closed += n;
      const second = Math.floor((this.now() - start) / 1000);
      while (perSecond.length <= second) perSecond.push(0);
      perSecond[second]! += n;
    };
    let finalFrom: number | undefined;
    for (;;) {
      if (this.sessions.size === 0) break;
      const elapsed = this.now() - start;
      if (this.hurried || spreadMs === 0 || elapsed >= spreadMs) {
        // The end of the spread (or a hurry): whatever is left, including connections whose
        // upgrade completed after the listen socket closed. A session whose socket will not close
        // (its close handler failed, contained and counted elsewhere) does not hold the exit.
        finalFrom ??= this.now();
        count(this.sessions.closeSome(Infinity, Close.SHUTDOWN));
        if (this.sessions.size === 0 || this.now() - finalFrom >= FINAL_MS) break;
        await new Promise((r) => setTimeout(r, TICK_MS)); // closes still completing
        continue;
      }
      const due = Math.ceil((open * elapsed) / spreadMs) - closed;
      if (due > 0) count(this.sessions.closeSome(due, Close.SHUTDOWN));
      await this.sleep(Math.min(TICK_MS, spreadMs - elapsed));
    }
    const report: DrainReport = { open, closed, acceptedUntilMs: start - t0, doneMs: this.now() - t0, perSecond, left: this.sessions.size };
    this.log('drain: every connection closed', { ...report });
    return report;
  }
}
