// The in-host store, the host's side: run by the supervisor (src/supervisor/), it holds what the
// workers of one host share when there is no Redis (registry, presence, revocations) and, with or
// without Redis, the connection caps counted for the whole host; it relays Bus payloads between the
// workers. Each worker is one connection on a Unix socket (stores/host/link.ts). When a worker's
// connection closes (it exited, or died), its registry entries, presence and cap counts go at once:
// the host knows, there is no TTL to wait for.
//
// One event loop serves every worker: a Bus payload costs the host one read and N-1 writes, batched
// per event-loop turn (a writev per worker), as Redis pub/sub does for the nodes of a deployment.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Refusal } from '../../errors/codes.js';
import { keyOf2 } from '../../keys/keys.js';
import { MemoryPresenceStore } from '../memory/presence.js';
import { MemoryRegistryStore } from '../memory/registry.js';
import type { PresenceTransition } from '../ports.js';
import { encodeBus, encodeEvent, encodeReply, Kind, type Frame } from './frames.js';
import { FramedSocket } from './link.js';
import type { Hello, RevokedEvent, UserRevokedEvent } from './stores.js';

export interface HostCaps {
  /** connections on the whole host (0 = no cap here; each worker still has its descriptor budget) */
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerTenant: number;
}

export interface HostServerOptions {
  readonly registryTtlSec: number;
  readonly presenceTtlSec: number;
  readonly caps: HostCaps;
  /**
   * A worker's presence went with it: the Bus payloads that tell the rooms (presence notifications,
   * built by the supervisor, which knows the protocol), relayed to every other worker.
   */
  readonly onPresenceLost?: (transitions: PresenceTransition[]) => Buffer[];
  /** A worker's connection closed (after its state was removed). */
  readonly onWorkerGone?: (nodeId: string) => void;
  readonly now?: () => number;
}

/** One worker's connection. */
interface Peer {
  readonly framed: FramedSocket;
  nodeId: string | undefined;
  /** cap slots this worker holds: keyOf2(tenant, user) -> count */
  readonly slots: Map<string, { tenant: string; user: string; n: number }>;
}

type Handler = (peer: Peer, args: Record<string, unknown>) => unknown;

export class HostServer {
  readonly registry: MemoryRegistryStore;
  readonly presence: MemoryPresenceStore;
  private readonly revoked = new Map<string, number>();
  /** keyOf2(tenant, sub) -> the user revocation */
  private readonly users = new Map<string, { tenant: string; sub: string; before: number; until: number }>();
  private readonly peers = new Set<Peer>();
  private readonly now: () => number;
  private server: Server | undefined;
  private dir: string | undefined;
  private total = 0;
  private readonly perUser = new Map<string, number>();
  private readonly perTenant = new Map<string, number>();
  /** Bus payloads relayed (see also `dropped`) */
  relayed = 0;
  path = '';

  constructor(private readonly opts: HostServerOptions) {
    this.now = opts.now ?? Date.now;
    this.registry = new MemoryRegistryStore(opts.registryTtlSec, this.now);
    this.presence = new MemoryPresenceStore(opts.presenceTtlSec, this.now);
  }

  /** Listens on a fresh socket in a private directory (mode 0700): only this user's processes can connect. */
  listen(): Promise<string> {
    this.dir = mkdtempSync(join(tmpdir(), 'wsgate-host-'));
    this.path = join(this.dir, 'host.sock');
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve(this.path));
    });
  }

  get workers(): number {
    return this.peers.size;
  }

  get dropped(): number {
    let n = 0;
    for (const p of this.peers) n += p.framed.dropped;
    return n;
  }

  get revokedCount(): number {
    return this.revoked.size;
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.framed.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** The contract suite's "store restarted empty". */
  wipe(): void {
    this.registry.clear();
    this.presence.clear();
  }

  private accept(socket: Socket): void {
    const framed = new FramedSocket(socket, (f) => this.frame(peer, f), () => this.gone(peer));
    const peer: Peer = { framed, nodeId: undefined, slots: new Map() };
    this.peers.add(peer);
  }

  private frame(peer: Peer, f: Frame): void {
    switch (f.kind) {
      case Kind.BUS:
        this.relay(f.payload, peer);
        return;
      case Kind.REQ: {
        const { op, args } = (f.value ?? {}) as { op?: string; args?: Record<string, unknown> };
        const handler = op !== undefined ? this.handlers[op] : undefined;
        if (!handler) return peer.framed.write(encodeReply(f.id, false, `unknown op ${String(op)}`));
        let result: unknown;
        try {
          result = handler(peer, args ?? {});
        } catch (err) {
          return peer.framed.write(encodeReply(f.id, false, (err as Error).message));
        }
        Promise.resolve(result).then(
          (v) => peer.framed.write(encodeReply(f.id, true, v ?? null)),
          (err: unknown) => peer.framed.write(encodeReply(f.id, false, (err as Error).message)),
        );
        return;
      }
      case Kind.EVENT: {
        const e = f.value as { op?: string; tenant?: unknown; user?: unknown };
        if (e?.op === 'release' && typeof e.tenant === 'string' && typeof e.user === 'string') this.release(peer, e.tenant, e.user);
        return;
      }
      default:
        return;
    }
  }

  /** Sends a Bus payload to every worker but `from`. */
  private relay(payload: Buffer, from: Peer | undefined): void {
    this.relayed++;
    const parts = encodeBus(payload);
    for (const p of this.peers) if (p !== from) p.framed.write(parts, true);
  }

  private readonly handlers: Record<string, Handler> = {
    hello: (peer, a): Hello => {
      peer.nodeId = String(a.nodeId);
      const now = this.now();
      const revoked: Array<[string, number]> = [];
      for (const [jti, until] of this.revoked) {
        if (until > now) revoked.push([jti, until]);
        else this.revoked.delete(jti);
      }
      const users: Array<[string, string, number, number]> = [];
      for (const [k, u] of this.users) {
        if (u.until > now) users.push([u.tenant, u.sub, u.before, u.until]);
        else this.users.delete(k);
      }
      return { revoked, users };
    },
    'registry.apply': (_p, a) => this.registry.apply(String(a.nodeId), a.batch as never),
    'registry.list': () => this.registry.list(),
    'registry.removeNode': (_p, a) => this.registry.removeNode(String(a.nodeId)),
    'registry.liveNodes': () => this.registry.liveNodes(),
    'presence.apply': (_p, a) => this.presence.apply(String(a.nodeId), a.batch as never),
    'presence.members': (_p, a) => this.presence.members(String(a.room), typeof a.exceptNode === 'string' ? a.exceptNode : undefined),
    'presence.removeNode': (_p, a) => this.presence.removeNode(String(a.nodeId)),
    revoke: (_p, a) => {
      const jti = String(a.jti);
      const until = this.now() + Number(a.ttlSec) * 1000;
      this.revoked.set(jti, Math.max(until, this.revoked.get(jti) ?? 0));
      // Every worker, the asking one included, hears of it before the reply (one socket, in order).
      const ev: RevokedEvent = { ev: 'revoked', jti, until: this.revoked.get(jti)! };
      const parts = encodeEvent(ev);
      for (const p of this.peers) p.framed.write(parts);
      return null;
    },
    'revoke-user': (_p, a) => {
      const tenant = String(a.tenant);
      const sub = String(a.sub);
      const before = Number(a.before);
      const until = this.now() + Number(a.ttlSec) * 1000;
      this.users.set(keyOf2(tenant, sub), { tenant, sub, before, until });
      const ev: UserRevokedEvent = { ev: 'revoked-user', tenant, sub, before, until };
      const parts = encodeEvent(ev);
      for (const p of this.peers) p.framed.write(parts);
      return null;
    },
    admit: (peer, a) => this.admit(peer, String(a.tenant), String(a.user)),
  };

  /** Counts a connection against the host's caps; null = admitted, else the refusal code. */
  private admit(peer: Peer, tenant: string, user: string): string | null {
    const c = this.opts.caps;
    const userKey = keyOf2(tenant, user);
    if (c.maxConnections > 0 && this.total >= c.maxConnections) return Refusal.UNAVAILABLE.code;
    if (c.maxConnectionsPerUser > 0 && (this.perUser.get(userKey) ?? 0) >= c.maxConnectionsPerUser) return Refusal.TOO_MANY_CONNECTIONS.code;
    if (c.maxConnectionsPerTenant > 0 && (this.perTenant.get(tenant) ?? 0) >= c.maxConnectionsPerTenant) return Refusal.TOO_MANY_CONNECTIONS.code;
    this.total++;
    if (c.maxConnectionsPerUser > 0) bump(this.perUser, userKey, 1);
    if (c.maxConnectionsPerTenant > 0) bump(this.perTenant, tenant, 1);
    const slot = peer.slots.get(userKey);
    if (slot) slot.n++;
    else peer.slots.set(userKey, { tenant, user, n: 1 });
    return null;
  }

  private release(peer: Peer, tenant: string, user: string, n = 1): void {
    const userKey = keyOf2(tenant, user);
    const slot = peer.slots.get(userKey);
    if (!slot) return; // never more than it holds
    const k = Math.min(n, slot.n);
    slot.n -= k;
    if (slot.n === 0) peer.slots.delete(userKey);
    this.total -= k;
    if (this.opts.caps.maxConnectionsPerUser > 0) bump(this.perUser, userKey, -k);
    if (this.opts.caps.maxConnectionsPerTenant > 0) bump(this.perTenant, tenant, -k);
  }

  /** A worker's connection closed: its connections are gone, and so are its entries and its cap slots. */
  private gone(peer: Peer): void {
    if (!this.peers.delete(peer)) return;
    for (const s of [...peer.slots.values()]) this.release(peer, s.tenant, s.user, s.n);
    const nodeId = peer.nodeId;
    if (nodeId === undefined) return;
    void this.registry.removeNode(nodeId);
    const left = this.presence.removeNodeNow(nodeId);
    if (left.length > 0 && this.opts.onPresenceLost) for (const payload of this.opts.onPresenceLost(left)) this.relay(payload, undefined);
    this.opts.onWorkerGone?.(nodeId);
  }
}

function bump(m: Map<string, number>, k: string, d: number): void {
  const n = (m.get(k) ?? 0) + d;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}
