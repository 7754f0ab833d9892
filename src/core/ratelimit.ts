// The per-connection limit on inbound frames: two token buckets, one counting frames (valid or
// not) and one counting bytes, charged *before* a frame is decoded, so a flood costs the gateway a
// few comparisons per frame. Pure: the caller passes the time in.
//
// Refused frames in a row are counted as strikes; the count is cleared only when a frame arrives
// to a full frame bucket (the client was quiet long enough to refill it), so a sustained flood
// cannot reset it by letting one token drip in. More than `burst` strikes: close 4502.

export interface Bucket {
  /** frames that may still be sent now */
  tokens: number;
  /** bytes that may still be sent now */
  bytes: number;
  /** ms of the last refill */
  refilledAt: number;
  /** frames refused since the bucket was last full */
  strikes: number;
}

export interface RateLimits {
  /** frames per second; 0 = unlimited */
  readonly rate: number;
  readonly burst: number;
  /** bytes per second; 0 = unlimited */
  readonly rateBytes: number;
  readonly burstBytes: number;
}

export type Verdict = 'ok' | 'refused' | 'close';

export class RateLimiter {
  constructor(private readonly limits: RateLimits) {}

  /** A full bucket for a new connection. */
  fill(b: Bucket, now: number): void {
    b.tokens = this.limits.burst;
    b.bytes = this.limits.burstBytes;
    b.refilledAt = now;
    b.strikes = 0;
  }

  /** Charges one frame of `size` bytes. */
  charge(b: Bucket, size: number, now: number): Verdict {
    const { rate, burst, rateBytes, burstBytes } = this.limits;
    if (rate === 0 && rateBytes === 0) return 'ok';
    const dt = now - b.refilledAt;
    if (dt > 0) {
      b.tokens = Math.min(burst, b.tokens + (dt * rate) / 1000);
      b.bytes = Math.min(burstBytes, b.bytes + (dt * rateBytes) / 1000);
      b.refilledAt = now;
    }
    const framesOk = rate === 0 || b.tokens >= 1;
    const bytesOk = rateBytes === 0 || b.bytes >= size;
    if (framesOk && bytesOk) {
      if ((rate === 0 || b.tokens >= burst) && (rateBytes === 0 || b.bytes >= burstBytes)) b.strikes = 0;
      if (rate !== 0) b.tokens -= 1;
      if (rateBytes !== 0) b.bytes -= size;
      return 'ok';
    }
    return ++b.strikes > burst ? 'close' : 'refused';
  }

  /**
   * Charges `n` more frame tokens for a request that does the work of several (a join or leave of
   * n + 1 rooms costs n + 1 tokens in all). Called after charge(), so the bucket is fresh.
   */
  chargeMore(b: Bucket, n: number): Verdict {
    if (this.limits.rate === 0 || n <= 0) return 'ok';
    if (b.tokens >= n) {
      b.tokens -= n;
      return 'ok';
    }
    return ++b.strikes > this.limits.burst ? 'close' : 'refused';
  }
}
