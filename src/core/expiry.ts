// A coarse timer structure for token expiry: items sit in buckets of `granularityMs`; one
// interval sweeps the due buckets. Scheduling and cancelling are O(1), and 100k sockets cost
// 100k set entries instead of 100k timers. Pure (the caller passes the time in).
export interface Scheduled {
  /** bucket index the item is in, or -1 */
  wheelBucket: number;
}

export class ExpiryWheel<T extends Scheduled> {
  private readonly buckets = new Map<number, Set<T>>();
  private swept: number;

  constructor(
    private readonly granularityMs: number,
    now: number,
  ) {
    this.swept = Math.floor(now / granularityMs) - 1;
  }

  get size(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.size;
    return n;
  }

  /** Schedules (or moves) an item to fire at the first sweep at or after `atMs`. */
  schedule(item: T, atMs: number): void {
    this.cancel(item);
    // Never into a bucket already swept: it would wait forever.
    const idx = Math.max(Math.ceil(atMs / this.granularityMs), this.swept + 1);
    let b = this.buckets.get(idx);
    if (!b) this.buckets.set(idx, (b = new Set()));
    b.add(item);
    item.wheelBucket = idx;
  }

  cancel(item: T): void {
    if (item.wheelBucket < 0) return;
    const b = this.buckets.get(item.wheelBucket);
    if (b) {
      b.delete(item);
      if (b.size === 0) this.buckets.delete(item.wheelBucket);
    }
    item.wheelBucket = -1;
  }

  /** Removes and returns every item due at `now`. */
  due(now: number): T[] {
    const upto = Math.floor(now / this.granularityMs);
    const out: T[] = [];
    if (upto <= this.swept) return out;
    // Walk the buckets that exist rather than every index: a long pause costs nothing extra.
    for (const [idx, b] of this.buckets) {
      if (idx > upto) continue;
      for (const item of b) {
        item.wheelBucket = -1;
        out.push(item);
      }
      this.buckets.delete(idx);
    }
    this.swept = upto;
    return out;
  }
}
