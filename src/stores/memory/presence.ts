// Embedded presence store: node -> room -> users, with node expiry as in Redis. It holds every
// node's rooms, so each apply also reports the transitions it caused over all nodes (a user with
// connections on two nodes joins once and leaves once). The in-host store (stores/host/server.ts)
// keeps the presence of a host's workers in one of these.
import type { ApplyResult, PresenceBatch, PresenceStore, PresenceTransition } from '../ports.js';

interface NodeRooms { expiresAt: number; rooms: Map<string, Set<string>> }

export class MemoryPresenceStore implements PresenceStore {
  private readonly nodes = new Map<string, NodeRooms>();

  constructor(
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Is `user` in `room` on a live node other than `except`? */
  private elsewhere(room: string, user: string, except: string, now: number): boolean {
    for (const [id, node] of this.nodes) {
      if (id === except || node.expiresAt <= now) continue;
      if (node.rooms.get(room)?.has(user)) return true;
    }
    return false;
  }

  apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult> {
    const now = this.now();
    let node = this.nodes.get(nodeId);
    const lost = !node || node.expiresAt <= now;
    const before = lost || !node ? new Map<string, Set<string>>() : node.rooms;
    // Who the batch names, and whether each was in the room here before it is applied.
    const touched = new Map<string, Map<string, boolean>>();
    const touch = (room: string, users: Iterable<string>): void => {
      let m = touched.get(room);
      if (!m) touched.set(room, (m = new Map()));
      const had = before.get(room);
      for (const u of users) if (!m.has(u)) m.set(u, had?.has(u) === true);
    };
    for (const [room, users] of batch.added) touch(room, users);
    for (const [room, users] of batch.removed) touch(room, users);
    if (batch.full) {
      for (const [room, users] of batch.full) touch(room, users);
      for (const [room, users] of before) touch(room, users);
    }
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
    node.expiresAt = now + this.ttlSec * 1000;
    return Promise.resolve({ lost, transitions: this.transitions(nodeId, touched, now) });
  }

  /**
   * What changed for the deployment: a user who entered a room on this node and is on no other
   * node joined; one who left it here and is nowhere else left. Only the users the batch names (and,
   * for a full rewrite, the node's rooms before) are looked at.
   */
  private transitions(nodeId: string, touched: ReadonlyMap<string, ReadonlyMap<string, boolean>>, now: number): PresenceTransition[] {
    const after = this.nodes.get(nodeId)!.rooms;
    const out: PresenceTransition[] = [];
    for (const [room, users] of touched) {
      const joined: string[] = [];
      const left: string[] = [];
      const here = after.get(room);
      for (const [u, was] of users) {
        const is = here?.has(u) === true;
        if (was === is || this.elsewhere(room, u, nodeId, now)) continue;
        (is ? joined : left).push(u);
      }
      if (joined.length > 0 || left.length > 0) out.push({ room, joined, left });
    }
    return out;
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
    this.removeNodeNow(nodeId);
    return Promise.resolve();
  }

  /** Drops a node at once (a worker that died) and returns who thereby left each room for good. */
  removeNodeNow(nodeId: string): PresenceTransition[] {
    const node = this.nodes.get(nodeId);
    this.nodes.delete(nodeId);
    if (!node || node.expiresAt <= this.now()) return [];
    const now = this.now();
    const out: PresenceTransition[] = [];
    for (const [room, users] of node.rooms) {
      const left = [...users].filter((u) => !this.elsewhere(room, u, nodeId, now));
      if (left.length > 0) out.push({ room, joined: [], left });
    }
    return out;
  }

  /** Forgets every node (the contract suite's "store restarted empty"). */
  clear(): void {
    this.nodes.clear();
  }
}
