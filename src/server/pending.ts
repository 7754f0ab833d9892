// The bound on sockets that have not completed an upgrade, in total and per source address, so
// that one address holding half-open requests cannot take every descriptor and lock out the
// others. Pure counting; server/gateway.ts feeds it (from uWS's socket filter where the build has
// one, else from the upgrade handler).

export type PendingVerdict = 'ok' | 'total' | 'address';

export class PendingSockets {
  private readonly byAddress = new Map<string, number>();
  private total = 0;

  constructor(
    readonly maxTotal: number,
    readonly maxPerAddress: number,
  ) {}

  get size(): number {
    return this.total;
  }

  get addresses(): number {
    return this.byAddress.size;
  }

  /** Counts a new pending socket from `address`, unless a bound is reached (then nothing is counted). */
  enter(address: string): PendingVerdict {
    if (this.total >= this.maxTotal) return 'total';
    const n = this.byAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress) return 'address';
    this.byAddress.set(address, n + 1);
    this.total++;
    return 'ok';
  }

  leave(address: string): void {
    const n = this.byAddress.get(address);
    if (n === undefined) return;
    if (n > 1) this.byAddress.set(address, n - 1);
    else this.byAddress.delete(address);
    this.total--;
  }
}
