// Embedded deployment-cap counts: node -> tenant -> user -> connections, with node expiry as in
// Redis (a node that stops refreshing stops counting). The embedded store is one node, so its
// deployment caps are that node's; several nodes share one instance only in tests.
import type { CapStore, CapVerdict } from '../ports.js';

interface NodeCounts { expiresAt: number; tenants: Map<string, Map<string, number>> }

export class MemoryCapStore implements CapStore {
  private readonly nodes = new Map<string, NodeCounts>();

  constructor(
    private readonly userCap: number,
    private readonly tenantCap: number,
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  private live(): NodeCounts[] {
    const now = this.now();
    const out: NodeCounts[] = [];
    for (const [id, n] of this.nodes) {
      if (n.expiresAt <= now) this.nodes.delete(id);
      else out.push(n);
    }
    return out;
  }

  private node(nodeId: string): NodeCounts {
    let n = this.nodes.get(nodeId);
    if (!n || n.expiresAt <= this.now()) this.nodes.set(nodeId, (n = { expiresAt: 0, tenants: new Map() }));
    n.expiresAt = this.now() + this.ttlSec * 1000;
    return n;
  }

  reserve(nodeId: string, tenant: string, user: string): CapVerdict {
    let u = 0;
    let t = 0;
    for (const n of this.live()) {
      const users = n.tenants.get(tenant);
      if (!users) continue;
      u += users.get(user) ?? 0;
      for (const c of users.values()) t += c;
    }
    if (this.userCap > 0 && u >= this.userCap) return 'user';
    if (this.tenantCap > 0 && t >= this.tenantCap) return 'tenant';
    const tenants = this.node(nodeId).tenants;
    let users = tenants.get(tenant);
    if (!users) tenants.set(tenant, (users = new Map()));
    users.set(user, (users.get(user) ?? 0) + 1);
    return 'ok';
  }

  release(nodeId: string, tenant: string, user: string): Promise<boolean> {
    const n = this.nodes.get(nodeId);
    const users = n && n.expiresAt > this.now() ? n.tenants.get(tenant) : undefined;
    const c = users?.get(user) ?? 0;
    if (!users || c <= 0) return Promise.resolve(false);
    if (c === 1) users.delete(user);
    else users.set(user, c - 1);
    if (users.size === 0) n!.tenants.delete(tenant);
    return Promise.resolve(true);
  }

  refresh(nodeId: string, tenants: readonly string[]): Promise<{ lost: string[]; all: boolean }> {
    const n = this.nodes.get(nodeId);
    if (!n || n.expiresAt <= this.now()) {
      this.node(nodeId);
      return Promise.resolve({ lost: [...tenants], all: true });
    }
    n.expiresAt = this.now() + this.ttlSec * 1000;
    return Promise.resolve({ lost: tenants.filter((t) => !n.tenants.has(t)), all: false });
  }

  rewrite(nodeId: string, counts: ReadonlyMap<string, ReadonlyMap<string, number>>): Promise<void> {
    const tenants = this.node(nodeId).tenants;
    for (const [tenant, users] of counts) {
      const copy = new Map([...users].filter(([, c]) => c > 0));
      if (copy.size > 0) tenants.set(tenant, copy);
      else tenants.delete(tenant);
    }
    return Promise.resolve();
  }

  removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    return Promise.resolve();
  }
}
