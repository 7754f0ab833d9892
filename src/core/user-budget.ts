// Budgets shared by all the sockets of one user (tenant + sub) on this node. The per-connection
// rate limit (core/ratelimit.ts) bounds what one socket costs, but a user may hold many sockets: the
// red team's user with 300 sockets swapped rooms within each socket's limit (60,000 room changes a
// second in all) and took a node out of service, and 128 sockets of one user kept every presence
// read slot of the node busy. So room changes (join and leave, one token per room) come out of a
// bucket per user too, and a user has a bounded number of presence requests waiting, whatever its
// number of sockets. Pure: the caller passes the time in.
//
// An entry exists only for users who changed rooms or asked for presence lately: the first such
// request creates it (one map key per request, on requests that cost far more), and sweep() drops
// the ones whose bucket is full again and who have nothing waiting. Nothing is done per upgrade.
import { keyOf2 } from '../keys/keys.js';

export interface UserLimits {
  /** room changes (joins and leaves, per room) per second per user on this node; 0 = unlimited */
  readonly roomRate: number;
  readonly roomBurst: number;
  /** presence requests one user may have waiting on this node */
  readonly presenceWaiting: number;
}

interface Budget {
  tokens: number;
  /** ms of the last refill */
  at: number;
  waiting: number;
}

export class UserBudgets {
  private readonly users = new Map<string, Budget>();

  constructor(private readonly limits: UserLimits) {}

  get size(): number {
    return this.users.size;
  }

  private budget(tenant: string, user: string, now: number): Budget {
    const key = keyOf2(tenant, user);
    let b = this.users.get(key);
    if (b === undefined) this.users.set(key, (b = { tokens: this.limits.roomBurst, at: now, waiting: 0 }));
    return b;
  }

  private refill(b: Budget, now: number): void {
    const dt = now - b.at;
    if (dt > 0) {
      b.tokens = Math.min(this.limits.roomBurst, b.tokens + (dt * this.limits.roomRate) / 1000);
      b.at = now;
    }
  }

  /** Takes `rooms` room changes from the user's bucket; false (nothing taken) when it has fewer. */
  takeRooms(tenant: string, user: string, rooms: number, now: number): boolean {
    if (this.limits.roomRate === 0) return true;
    const b = this.budget(tenant, user, now);
    this.refill(b, now);
    if (b.tokens < rooms) return false;
    b.tokens -= rooms;
    return true;
  }

  /** One more presence request of the user waits for the store; false when it has its share waiting. */
  presenceEnter(tenant: string, user: string, now: number): boolean {
    const b = this.budget(tenant, user, now);
    if (b.waiting >= this.limits.presenceWaiting) return false;
    b.waiting++;
    return true;
  }

  presenceLeave(tenant: string, user: string): void {
    const b = this.users.get(keyOf2(tenant, user));
    if (b !== undefined && b.waiting > 0) b.waiting--;
  }

  /** Drops the users whose bucket is full again and who have nothing waiting. */
  sweep(now: number): void {
    for (const [key, b] of this.users) {
      if (b.waiting > 0) continue;
      this.refill(b, now);
      if (this.limits.roomRate === 0 || b.tokens >= this.limits.roomBurst) this.users.delete(key);
    }
  }
}
