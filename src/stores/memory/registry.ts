// Embedded connection registry. Node liveness works as in Redis (heartbeat + TTL), so one
// contract suite covers both; several nodes share one instance only in tests.
import type { ApplyResult, ConnectionEntry, RegistryBatch, RegistryStore } from '../ports.js';

interface NodeState { expiresAt: number; conns: Map<string, ConnectionEntry> }

export class MemoryRegistryStore implements RegistryStore {
  private readonly nodes = new Map<string, NodeState>();

  constructor(
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  apply(nodeId: string, batch: RegistryBatch): Promise<ApplyResult> {
    let node = this.nodes.get(nodeId);
    const lost = !node || node.expiresAt <= this.now();
    if (!node || lost || batch.full) {
      node = { expiresAt: 0, conns: new Map() };
      this.nodes.set(nodeId, node);
    }
    for (const id of batch.removals) node.conns.delete(id);
    for (const e of batch.upserts) node.conns.set(e.connId, e);
    node.expiresAt = this.now() + this.ttlSec * 1000;
    return Promise.resolve({ lost });
  }

  list(): Promise<ConnectionEntry[]> {
    const out: ConnectionEntry[] = [];
    const now = this.now();
    for (const [id, node] of this.nodes) {
      if (node.expiresAt <= now) {
        this.nodes.delete(id);
        continue;
      }
      out.push(...node.conns.values());
    }
    return Promise.resolve(out);
  }

  liveNodes(): Promise<string[]> {
    const now = this.now();
    return Promise.resolve([...this.nodes].filter(([, node]) => node.expiresAt > now).map(([id]) => id));
  }

  removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    return Promise.resolve();
  }

  /** Forgets every node (the contract suite's "store restarted empty"). */
  clear(): void {
    this.nodes.clear();
  }
}
