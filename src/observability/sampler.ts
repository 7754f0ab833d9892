// The rate limit shared by the logs a client can cause (contained failures, refused upgrades): at
// most `perSec` lines a second; the first line after a suppressed stretch says how many were left
// out. A flood costs one clock read and a compare per event, and at most `perSec` lines a second.
export class LogSampler {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly perSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * undefined: leave this line out (counted). A number: log it, with that many left out before it
   * (0: none).
   */
  take(): number | undefined {
    if (this.perSec <= 0) return undefined;
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.logged = 0;
    }
    if (this.logged >= this.perSec) {
      this.suppressed++;
      return undefined;
    }
    this.logged++;
    const left = this.suppressed;
    this.suppressed = 0;
    return left;
  }
}
