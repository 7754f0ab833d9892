// The in-host store, a worker's side: the store ports (and the connection-cap admission) over the
// link to the supervisor's HostServer (stores/host/server.ts), which holds the state of every worker
// of the host. One more implementation of the ports, covered by the same contract suite
// (test/contract/stores.contract.test.ts). Used on the embedded store when WSGATE_WORKERS > 1.
import type { Admission } from '../../core/ports.js';
import { Refusal, type RefusalKind } from '../../errors/codes.js';
import { RevokedSet } from '../memory/revoked-set.js';
import type { ApplyResult, Bus, ConnectionEntry, PresenceBatch, PresenceStore, RegistryBatch, RegistryStore, RevocationStore } from '../ports.js';
import { HostLink } from './link.js';

/** What the host answers to a worker's hello. */
export interface Hello {
  /** revoked token ids and when each stops being revoked (ms since epoch) */
  readonly revoked: ReadonlyArray<readonly [string, number]>;
  /** revoked users: [tenant, sub, before (s), until (ms since epoch)] */
  readonly users?: ReadonlyArray<readonly [string, string, number, number]>;
}

/** A revocation the host tells every worker of. */
export interface RevokedEvent {
  readonly ev: 'revoked';
  readonly jti: string;
  readonly until: number;
}

/** A user revocation the host tells every worker of. */
export interface UserRevokedEvent {
  readonly ev: 'revoked-user';
  readonly tenant: string;
  readonly sub: string;
  readonly before: number;
  readonly until: number;
}

export class HostRegistryStore implements RegistryStore {
  constructor(private readonly link: HostLink) {}

  apply(nodeId: string, batch: RegistryBatch): Promise<ApplyResult> {
    return this.link.request('registry.apply', { nodeId, batch });
  }

  list(): Promise<ConnectionEntry[]> {
    return this.link.request('registry.list', {});
  }

  removeNode(nodeId: string): Promise<void> {
    return this.link.request('registry.removeNode', { nodeId });
  }

  liveNodes(): Promise<string[]> {
    return this.link.request('registry.liveNodes', {});
  }
}

export class HostPresenceStore implements PresenceStore {
  constructor(private readonly link: HostLink) {}

  apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult> {
    return this.link.request('presence.apply', { nodeId, batch });
  }

  members(room: string, exceptNode?: string): Promise<string[]> {
    return this.link.request('presence.members', { room, exceptNode });
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.link.request('presence.removeNode', { nodeId });
  }
}

/**
 * Revocations: the host keeps the list and tells every worker of each one; each worker keeps a copy
 * (one Map entry per revoked token), so an upgrade is decided without asking the host.
 */
export class HostRevocationStore implements RevocationStore {
  private readonly copy: RevokedSet;
  private handler: ((jti: string) => void) | undefined;
  private userHandler: ((tenantId: string, sub: string, before: number) => void) | undefined;
  lookups = 0;
  readonly roundTrips = 0;

  constructor(
    private readonly link: HostLink,
    hello: Hello,
    now: () => number = Date.now,
  ) {
    this.copy = new RevokedSet(now);
    for (const [jti, until] of hello.revoked) this.copy.setToken(jti, until);
    for (const [tenant, sub, before, until] of hello.users ?? []) this.copy.setUser(tenant, sub, before, until);
    link.onEvent((v) => {
      const e = v as RevokedEvent | UserRevokedEvent;
      if (e?.ev === 'revoked' && typeof e.jti === 'string' && typeof e.until === 'number') {
        this.copy.setToken(e.jti, e.until);
        this.handler?.(e.jti);
      } else if (e?.ev === 'revoked-user' && typeof e.tenant === 'string' && typeof e.sub === 'string' && typeof e.before === 'number' && typeof e.until === 'number') {
        this.copy.setUser(e.tenant, e.sub, e.before, e.until);
        this.userHandler?.(e.tenant, e.sub, e.before);
      }
    });
  }

  isRevokedNow(jti: string): boolean {
    this.lookups++;
    return this.copy.hasToken(jti);
  }

  isRevoked(jti: string): Promise<boolean> {
    return Promise.resolve(this.isRevokedNow(jti));
  }

  /** Resolves once the host recorded it; the host's event reaches this worker before its reply. */
  async revoke(jti: string, ttlSec: number): Promise<void> {
    await this.link.request('revoke', { jti, ttlSec });
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }

  userRevokedBeforeNow(tenantId: string, sub: string): number {
    return this.copy.userBefore(tenantId, sub);
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    return Promise.resolve(this.userRevokedBeforeNow(tenantId, sub));
  }

  /** Resolves once the host recorded it; the host's event reaches this worker before its reply. */
  async revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    await this.link.request('revoke-user', { tenant: tenantId, sub, before, ttlSec });
  }

  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void {
    this.userHandler = handler;
  }

  get size(): number {
    return this.copy.size;
  }
}

export class HostBus implements Bus {
  readonly distributed = true;

  constructor(private readonly link: HostLink) {}

  /** Every worker of the host receives every payload (the host relays them); FanOut drops the rooms a worker has no member in. */
  publish(_room: string, payload: Buffer): Promise<void> {
    this.link.publish(payload);
    return Promise.resolve();
  }

  broadcast(payload: Buffer): Promise<void> {
    this.link.publish(payload);
    return Promise.resolve();
  }

  watch(): void {}

  unwatch(): void {}

  ready(): undefined {
    return undefined;
  }

  onMessage(handler: (payload: Buffer) => void): void {
    this.link.onBus(handler);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const REFUSALS: Record<string, RefusalKind> = { [Refusal.UNAVAILABLE.code]: Refusal.UNAVAILABLE, [Refusal.TOO_MANY_CONNECTIONS.code]: Refusal.TOO_MANY_CONNECTIONS };

/**
 * The connection caps counted for the whole host (every worker), by the host: one in-host round
 * trip per upgrade, only when a cap is configured. A host that does not answer in time: 503.
 */
export class HostAdmission implements Admission {
  constructor(
    private readonly link: HostLink,
    private readonly timeoutMs: number,
  ) {}

  async acquire(tenant: string, user: string): Promise<RefusalKind | undefined> {
    try {
      const code = await this.link.request<string | null>('admit', { tenant, user }, this.timeoutMs);
      return code === null ? undefined : (REFUSALS[code] ?? Refusal.UNAVAILABLE);
    } catch {
      return Refusal.UNAVAILABLE;
    }
  }

  release(tenant: string, user: string): void {
    this.link.event({ op: 'release', tenant, user });
  }
}

export interface HostStores {
  readonly link: HostLink;
  readonly registry: HostRegistryStore;
  readonly presence: HostPresenceStore;
  readonly revocations: HostRevocationStore;
  readonly bus: HostBus;
}

/** Connects a worker (`nodeId`) to the host's socket at `path` and says hello. */
export async function connectHost(path: string, nodeId: string): Promise<HostStores> {
  const link = await HostLink.connect(path);
  const hello = await link.request<Hello>('hello', { nodeId });
  return {
    link,
    registry: new HostRegistryStore(link),
    presence: new HostPresenceStore(link),
    revocations: new HostRevocationStore(link, hello),
    bus: new HostBus(link),
  };
}
