// The server API's rate limit: one token bucket per name (a principal, or an address for failed
// authentications). Pure: the caller passes the time in. The map is bounded: past `maxNames`,
// buckets that are full again (their name idle) are forgotten first, then the oldest.

interface Bucket {
  tokens: number;
  at: number;
}

export class NamedLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    /** tokens per second; 0 = unlimited */
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxNames = 10_000,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Whether `name` has a token now (none is taken). */
  allows(name: string, now: number): boolean {
    if (this.rate === 0) return true;
    const b = this.buckets.get(name);
    return b === undefined || this.refill(b, now) >= 1;
  }

  /** Takes a token for `name`; false when it has none left. */
  take(name: string, now: number): boolean {
    if (this.rate === 0) return true;
    let b = this.buckets.get(name);
    if (b === undefined) {
      this.bound(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(name, b);
    }
    this.refill(b, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private refill(b: Bucket, now: number): number {
    const dt = now - b.at;
    if (dt > 0) {
      b.tokens = Math.min(this.burst, b.tokens + (dt * this.rate) / 1000);
      b.at = now;
    }
    return b.tokens;
  }

  private bound(now: number): void {
    if (this.buckets.size < this.maxNames) return;
    for (const [name, b] of this.buckets) if (this.refill(b, now) >= this.burst) this.buckets.delete(name);
    for (const name of this.buckets.keys()) {
      if (this.buckets.size < this.maxNames) break;
      this.buckets.delete(name);
    }
  }
}
