// Revoked token ids and user revocations held in this process, each until its expiry: the embedded
// store's whole state, and a worker's copy of its host's (stores/host/stores.ts). Expired entries are
// dropped when looked up.
import { keyOf2 } from '../../keys/keys.js';

interface UserRevocation { readonly before: number; readonly until: number }

export class RevokedSet {
  /** jti -> ms when it stops being revoked */
  private readonly tokens = new Map<string, number>();
  /** keyOf2(tenant, sub) -> `before` (s) and until when (ms) */
  private readonly users = new Map<string, UserRevocation>();

  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.tokens.size;
  }

  /** Revoked until `until` (ms); a newer write replaces the older, as a SET of the Redis key does. */
  setToken(jti: string, until: number): void {
    this.tokens.set(jti, until);
  }

  hasToken(jti: string): boolean {
    const until = this.tokens.get(jti);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.tokens.delete(jti);
      return false;
    }
    return true;
  }

  /** The user's tokens issued before `before` (s) are revoked until `until` (ms); a newer write replaces the older. */
  setUser(tenant: string, sub: string, before: number, until: number): void {
    this.users.set(keyOf2(tenant, sub), { before, until });
  }

  /** `before` of the user's revocation, 0 when there is none (no key is built while nobody is revoked). */
  userBefore(tenant: string, sub: string): number {
    if (this.users.size === 0) return 0;
    const key = keyOf2(tenant, sub);
    const r = this.users.get(key);
    if (r === undefined) return 0;
    if (r.until <= this.now()) {
      this.users.delete(key);
      return 0;
    }
    return r.before;
  }
}
