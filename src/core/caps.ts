// Deployment-wide connection caps (WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER / _PER_TENANT): this
// node's side. Each accepted connection holds a reservation in the CapStore, taken before the
// upgrade and released at its close; the node keeps its own counts (tenant -> user -> n) so that it
// can refresh them (the store forgets a node that stops refreshing: crash safety) and rewrite a
// tenant the store lost or that may have drifted (a release or a reservation whose answer never
// came). The per-node caps (core/sessions.ts) are checked first and cost nothing.
import type { Claims } from '../auth/claims.js';
import { Refusal, type RefusalKind } from '../errors/codes.js';
import { StoreUnavailable, type CapStore, type CapVerdict } from '../stores/ports.js';

export class DeploymentCaps {
  private readonly counts = new Map<string, Map<string, number>>();
  /** tenants to rewrite at the next flush */
  private readonly dirty = new Set<string>();
  private cursor: Iterator<string> = [][Symbol.iterator]();
  private flushing: Promise<void> | undefined;
  /** bumped per tenant each time a rewrite of it is computed (see reserve) */
  private readonly epochs = new Map<string, number>();
  /** the node's first refresh: its alive key cannot exist yet, which says nothing of a loss */
  private first = true;
  refusals = 0;
  failures = 0;

  constructor(
    private readonly store: CapStore,
    private readonly nodeId: string,
    /** tenants refreshed per flush = ceil(tenants / refreshSpread): each at least every TTL/2 */
    private readonly refreshSpread: number,
  ) {}

  /** Tenants with connections on this node. */
  get tenants(): string[] {
    return [...this.counts.keys()];
  }

  /**
   * Takes a reservation for a connection of `claims`: undefined = reserved (the caller must
   * release it), or the refusal (429 over a cap, 503 when the store cannot answer).
   */
  reserve(claims: Claims): RefusalKind | undefined | Promise<RefusalKind | undefined> {
    const { tenantId: tenant, sub: user } = claims;
    // Counted here before the store answers: a rewrite computed meanwhile includes it, never an
    // undercount that would let a cap be exceeded. If the store then refuses it, that rewrite
    // counted one too many: the epoch tells, and the tenant is rewritten again at the next flush.
    this.bump(tenant, user, 1);
    const epoch = this.epochs.get(tenant) ?? 0;
    let verdict: CapVerdict | Promise<CapVerdict>;
    try {
      verdict = this.store.reserve(this.nodeId, tenant, user);
    } catch (err) {
      return this.failed(tenant, user, err);
    }
    if (!(verdict instanceof Promise)) return this.decided(tenant, user, verdict, epoch);
    return verdict.then(
      (v) => this.decided(tenant, user, v, epoch),
      (err: unknown) => this.failed(tenant, user, err),
    );
  }

  /** A reserved connection ended (or its upgrade did not happen). */
  release(tenant: string, user: string): void {
    this.bump(tenant, user, -1);
    this.store.release(this.nodeId, tenant, user).then(
      (ok) => {
        if (!ok) this.dirty.add(tenant);
      },
      () => this.dirty.add(tenant),
    );
  }

  private decided(tenant: string, user: string, v: CapVerdict, epoch: number): RefusalKind | undefined {
    if (v === 'ok') return undefined;
    this.bump(tenant, user, -1);
    if ((this.epochs.get(tenant) ?? 0) !== epoch) this.dirty.add(tenant);
    this.refusals++;
    return Refusal.TOO_MANY_CONNECTIONS;
  }

  private failed(tenant: string, user: string, err: unknown): RefusalKind {
    this.bump(tenant, user, -1);
    this.failures++;
    // the store may have counted it after all (a timeout): rewrite the tenant at the next flush
    this.dirty.add(tenant);
    if (err instanceof StoreUnavailable) return Refusal.UNAVAILABLE;
    throw err;
  }

  private bump(tenant: string, user: string, d: 1 | -1): void {
    let users = this.counts.get(tenant);
    if (!users) {
      if (d < 0) return;
      this.counts.set(tenant, (users = new Map()));
    }
    const n = (users.get(user) ?? 0) + d;
    if (n > 0) users.set(user, n);
    else {
      users.delete(user);
      if (users.size === 0) this.counts.delete(tenant);
    }
  }

  /**
   * Heartbeat of a slice of the tenants, and a rewrite of the tenants the store lost or that may
   * have drifted. Concurrent calls share the one in flight.
   */
  flush(): Promise<void> {
    return (this.flushing ??= this.doFlush().finally(() => (this.flushing = undefined)));
  }

  private async doFlush(): Promise<void> {
    const slice = this.slice();
    const { lost, all } = await this.store.refresh(this.nodeId, slice);
    for (const t of all && !this.first ? this.counts.keys() : lost) this.dirty.add(t);
    this.first = false;
    if (this.dirty.size === 0) return;
    const tenants = [...this.dirty];
    this.dirty.clear();
    const counts = new Map<string, ReadonlyMap<string, number>>();
    for (const t of tenants) {
      counts.set(t, new Map(this.counts.get(t) ?? []));
      this.epochs.set(t, (this.epochs.get(t) ?? 0) + 1);
    }
    try {
      await this.store.rewrite(this.nodeId, counts);
    } catch (err) {
      for (const t of tenants) this.dirty.add(t);
      throw err;
    }
  }

  // A live iterator over the tenants, resumed each flush.
  private slice(): string[] {
    const n = this.counts.size;
    if (n === 0) return [];
    const take = Math.ceil(n / Math.max(1, this.refreshSpread));
    const out: string[] = [];
    for (let restarted = false; out.length < take; ) {
      const next = this.cursor.next();
      if (next.done) {
        if (restarted) break;
        restarted = true;
        this.cursor = this.counts.keys();
        continue;
      }
      out.push(next.value);
    }
    return out;
  }

  /** Clean shutdown: the node's counts leave the store at once. */
  forget(): Promise<void> {
    return this.store.removeNode(this.nodeId, this.tenants);
  }
}
