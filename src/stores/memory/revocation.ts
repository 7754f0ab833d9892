// Embedded revocation store: a map of jti -> expiry. Single node only.
import type { RevocationStore } from '../ports.js';

export class MemoryRevocationStore implements RevocationStore {
  private readonly revoked = new Map<string, number>();
  lookups = 0;
  readonly roundTrips = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private handler: ((jti: string) => void) | undefined;

  isRevokedNow(jti: string): boolean {
    this.lookups++;
    const until = this.revoked.get(jti);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.revoked.delete(jti);
      return false;
    }
    return true;
  }

  isRevoked(jti: string): Promise<boolean> {
    return Promise.resolve(this.isRevokedNow(jti));
  }

  revoke(jti: string, ttlSec: number): Promise<void> {
    this.revoked.set(jti, this.now() + ttlSec * 1000);
    this.handler?.(jti);
    return Promise.resolve();
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }
}
