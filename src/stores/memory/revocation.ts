// Embedded revocation store: maps of jti -> expiry and user -> (before, expiry). Single node only.
// The handlers are told a moment later (setImmediate), as the Redis mirror tells of a write: the
// caller of revoke() first does what it does next (the server API closes the sockets and counts them).
import { keyOf2 } from '../../keys/keys.js';
import type { RevocationStore } from '../ports.js';

interface UserRevocation { before: number; until: number }

export class MemoryRevocationStore implements RevocationStore {
  private readonly revoked = new Map<string, number>();
  private readonly users = new Map<string, UserRevocation>();
  lookups = 0;
  readonly roundTrips = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private handler: ((jti: string) => void) | undefined;
  private userHandler: ((tenantId: string, sub: string, before: number) => void) | undefined;

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
    setImmediate(() => this.handler?.(jti));
    return Promise.resolve();
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }

  userRevokedBeforeNow(tenantId: string, sub: string): number {
    if (this.users.size === 0) return 0;
    const key = keyOf2(tenantId, sub);
    const r = this.users.get(key);
    if (r === undefined) return 0;
    if (r.until <= this.now()) {
      this.users.delete(key);
      return 0;
    }
    return r.before;
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    return Promise.resolve(this.userRevokedBeforeNow(tenantId, sub));
  }

  revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    this.users.set(keyOf2(tenantId, sub), { before, until: this.now() + ttlSec * 1000 });
    setImmediate(() => this.userHandler?.(tenantId, sub, before));
    return Promise.resolve();
  }

  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void {
    this.userHandler = handler;
  }
}
