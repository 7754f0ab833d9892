// Embedded revocation store: a map of jti -> expiry. Single node only.
import type { RevocationStore } from '../ports.js';

export class MemoryRevocationStore implements RevocationStore {
  private readonly revoked = new Map<string, number>();
  lookups = 0;
  readonly roundTrips = 0;

  constructor(private readonly now: () => number = Date.now) {}

  isRevoked(jti: string): Promise<boolean> {
    this.lookups++;
    const until = this.revoked.get(jti);
    if (until === undefined) return Promise.resolve(false);
    if (until <= this.now()) {
      this.revoked.delete(jti);
      return Promise.resolve(false);
    }
    return Promise.resolve(true);
  }

  revoke(jti: string, ttlSec: number): Promise<void> {
    this.revoked.set(jti, this.now() + ttlSec * 1000);
    return Promise.resolve();
  }
}
