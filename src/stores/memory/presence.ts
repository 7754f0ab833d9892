// Embedded presence store: node -> room -> users, with node expiry as in Redis.
import type { ApplyResult, PresenceBatch, PresenceStore } from '../ports.js';

interface NodeRooms { expiresAt: number; rooms: Map<string, Set<string>> }

export class MemoryPresenceStore implements PresenceStore {
  private readonly nodes = new Map<string, NodeRooms>();

  constructor(
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult> {
    let node = this.nodes.get(nodeId);
    const lost = !node || node.expiresAt <= this.now();
    if (!node || lost || batch.full) {
      node = { expiresAt: 0, rooms: new Map() };
      this.nodes.set(nodeId, node);
    }
    const rooms = node.rooms;
    const add = (room: string, users: readonly string[]): void => {
      let set = rooms.get(room);
      if (!set) rooms.set(room, (set = new Set()));
      for (const u of users) set.add(u);
    };
    if (batch.full) for (const [room, users] of batch.full) add(room, users);
    for (const [room, users] of batch.removed) {
      const set = rooms.get(room);
      if (!set) continue;
      for (const u of users) set.delete(u);
      if (set.size === 0) rooms.delete(room);
    }
    for (const [room, users] of batch.added) add(room, users);
    node.expiresAt = this.now() + this.ttlSec * 1000;
    return Promise.resolve({ lost });
  }

  members(room: string, exceptNode?: string): Promise<string[]> {
    const out = new Set<string>();
    const now = this.now();
    for (const [id, node] of this.nodes) {
      if (node.expiresAt <= now) {
        this.nodes.delete(id);
        continue;
      }
      if (id === exceptNode) continue;
      const set = node.rooms.get(room);
      if (set) for (const u of set) out.add(u);
    }
    return Promise.resolve([...out].sort());
  }

  removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    return Promise.resolve();
  }
}
