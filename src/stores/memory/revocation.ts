// Embedded revocation store: the revoked token ids and user revocations of a single node
// (memory/revoked-set.ts). The handlers are told a moment later (setImmediate), as the Redis mirror
// tells of a write: the caller of revoke() first does what it does next (the server API closes the
// sockets and counts them).
import type { RevocationStore } from '../ports.js';
import { RevokedSet } from './revoked-set.js';

export class MemoryRevocationStore implements RevocationStore {
  private readonly set: RevokedSet;
  lookups = 0;
  readonly roundTrips = 0;
  private handler: ((jti: string) => void) | undefined;
  private userHandler: ((tenantId: string, sub: string, before: number) => void) | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.set = new RevokedSet(now);
  }

  isRevokedNow(jti: string): boolean {
    this.lookups++;
    return this.set.hasToken(jti);
  }

  isRevoked(jti: string): Promise<boolean> {
    return Promise.resolve(this.isRevokedNow(jti));
  }

  revoke(jti: string, ttlSec: number): Promise<void> {
    this.set.setToken(jti, this.now() + ttlSec * 1000);
    setImmediate(() => this.handler?.(jti));
    return Promise.resolve();
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }

  userRevokedBeforeNow(tenantId: string, sub: string): number {
    return this.set.userBefore(tenantId, sub);
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    return Promise.resolve(this.userRevokedBeforeNow(tenantId, sub));
  }

  revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    this.set.setUser(tenantId, sub, before, this.now() + ttlSec * 1000);
    setImmediate(() => this.userHandler?.(tenantId, sub, before));
    return Promise.resolve();
  }

  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void {
    this.userHandler = handler;
  }
}
