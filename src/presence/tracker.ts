// Local presence state and the batching of its changes. Joins and leaves change local state
// at once; flush() sends the net changes since the last flush to the PresenceStore as one
// batch (one pipeline), so the work per interval follows the rooms that changed, not the
// number of connections. A user with several connections in a room counts once.
//
// The buffer is bounded: a join and a leave that cancel out leave nothing behind, and past
// `maxPending` rooms (Redis away under churn of ever-new rooms) the buffer is dropped and the next
// successful flush rewrites the node's whole presence instead (the notifications of that period
// are lost; presence queries are exact again after that flush).
import type { FlushObserver } from '../registry/registry.js';
import type { PresenceBatch, PresenceStore, PresenceTransition } from '../stores/ports.js';

/** room: the room key */
export type PresenceChange = PresenceTransition;

interface Delta { add: Set<string>; rem: Set<string> }

export class PresenceTracker {
  /** room key -> user -> local connection count */
  private readonly local = new Map<string, Map<string, number>>();
  /** room key -> local connections in it (the sockets a publish to it reaches here) */
  private readonly conns = new Map<string, number>();
  private pending = new Map<string, Delta>();
  private flushing: Promise<readonly PresenceChange[]> | undefined;
  /** Send the node's whole state next time (first flush, or the store lost it). */
  private needFull = true;
  private refreshCursor: Iterator<string> = [][Symbol.iterator]();
  flushes = 0;
  failures = 0;
  /** times the buffer exceeded maxPending and was replaced by a full rewrite */
  overflows = 0;

  constructor(
    private readonly store: PresenceStore,
    private readonly nodeId: string,
    /** rooms refreshed per flush = ceil(rooms / refreshSpread): each key is refreshed every TTL/2 */
    private readonly refreshSpread: number,
    /** rooms with buffered changes before the buffer collapses into a full rewrite */
    private readonly maxPending = Infinity,
    private readonly observe: FlushObserver = () => undefined,
  ) {}

  private delta(room: string): Delta | undefined {
    let d = this.pending.get(room);
    if (d) return d;
    if (this.needFull && this.pending.size >= this.maxPending) return undefined; // collapsed: the full rewrite covers it
    if (this.pending.size >= this.maxPending) {
      this.overflows++;
      this.pending.clear();
      this.needFull = true;
      return undefined;
    }
    this.pending.set(room, (d = { add: new Set(), rem: new Set() }));
    return d;
  }

  private settle(room: string, d: Delta): void {
    if (d.add.size === 0 && d.rem.size === 0) this.pending.delete(room);
  }

  /**
   * Registers the one listener told when a room gets its first local member (true) and loses its
   * last (false): the Hub tells the Bus, which subscribes to the rooms this node serves.
   */
  onRoom(listener: (room: string, here: boolean) => void): void {
    this.roomListener = listener;
  }

  private roomListener: ((room: string, here: boolean) => void) | undefined;

  /** Returns true when the user became present (first local connection in the room). */
  join(room: string, user: string): boolean {
    let users = this.local.get(room);
    if (!users) {
      this.local.set(room, (users = new Map()));
      this.roomListener?.(room, true);
    }
    const n = users.get(user) ?? 0;
    users.set(user, n + 1);
    this.conns.set(room, (this.conns.get(room) ?? 0) + 1);
    if (n > 0) return false;
    const d = this.delta(room);
    if (d === undefined) return true;
    if (d.rem.has(user)) d.rem.delete(user); // left and came back within one interval
    else d.add.add(user);
    this.settle(room, d);
    return true;
  }

  /** Returns true when the user is gone (last local connection left the room). */
  leave(room: string, user: string): boolean {
    const users = this.local.get(room);
    const n = users?.get(user);
    if (!users || n === undefined) return false;
    const c = this.conns.get(room)!;
    if (c > 1) this.conns.set(room, c - 1);
    else this.conns.delete(room);
    if (n > 1) {
      users.set(user, n - 1);
      return false;
    }
    users.delete(user);
    if (users.size === 0) {
      this.local.delete(room);
      this.roomListener?.(room, false);
    }
    const d = this.delta(room);
    if (d === undefined) return true;
    if (d.add.has(user)) d.add.delete(user);
    else d.rem.add(user);
    this.settle(room, d);
    return true;
  }

  /** Local connections in a room (a user with two connections counts twice). */
  connections(room: string): number {
    return this.conns.get(room) ?? 0;
  }

  localMembers(room: string): string[] {
    return [...(this.local.get(room)?.keys() ?? [])].sort();
  }

  hasRoom(room: string): boolean {
    return this.local.has(room);
  }

  /** Room keys with at least one local member. */
  rooms(): string[] {
    return [...this.local.keys()];
  }

  get roomCount(): number {
    return this.local.size;
  }

  get pendingRooms(): number {
    return this.pending.size;
  }

  /** The node lost its state in the store (e.g. Redis restarted empty): resend everything next flush. */
  markLost(): void {
    this.needFull = true;
  }

  /**
   * Writes the pending changes. Resolves to the changes written (for join/leave notifications):
   * the store's own transitions where it reports them (over all nodes), else this node's; on
   * failure the changes are merged back under newer ones and the promise rejects.
   */
  flush(): Promise<readonly PresenceChange[]> {
    if (this.flushing) return this.flushing;
    const batchDeltas = this.pending;
    this.pending = new Map();
    const added = new Map<string, string[]>();
    const removed = new Map<string, string[]>();
    const changes: PresenceChange[] = [];
    for (const [room, d] of batchDeltas) {
      if (d.add.size === 0 && d.rem.size === 0) continue;
      const a = [...d.add];
      const r = [...d.rem];
      if (a.length) added.set(room, a);
      if (r.length) removed.set(room, r);
      changes.push({ room, joined: a, left: r });
    }
    const full = this.needFull ? this.snapshot() : undefined;
    this.needFull = false;
    // Rooms this batch touched that have no local member left: the store can forget them for this node.
    const vacated: string[] = [];
    for (const room of batchDeltas.keys()) if (!this.local.has(room)) vacated.push(room);
    const batch: PresenceBatch = { added, removed, vacated, refresh: this.refreshSlice(), ...(full ? { full } : {}) };
    const entries = full ? full.size : changes.length;
    const t0 = performance.now();
    this.flushing = this.store
      .apply(this.nodeId, batch)
      .then(
        (res) => {
          this.observe(entries, (performance.now() - t0) / 1000, true);
          this.flushes++;
          if (res.lost && !full) this.needFull = true;
          return res.transitions ?? changes;
        },
        (err: unknown) => {
          this.observe(entries, (performance.now() - t0) / 1000, false);
          this.failures++;
          if (full) this.needFull = true;
          this.mergeBack(batchDeltas);
          throw err;
        },
      )
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  private mergeBack(old: Map<string, Delta>): void {
    for (const [room, d] of old) {
      const now = this.pending.get(room);
      if (!now) {
        this.pending.set(room, d);
        continue;
      }
      // Newer changes win: an older op is kept only for users the newer batch does not touch.
      for (const u of d.add) if (!now.add.has(u) && !now.rem.has(u)) now.add.add(u);
      for (const u of d.rem) if (!now.add.has(u) && !now.rem.has(u)) now.rem.add(u);
    }
    if (this.pending.size > this.maxPending) {
      this.overflows++;
      this.pending.clear();
      this.needFull = true;
    }
  }

  private snapshot(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [room, users] of this.local) out.set(room, [...users.keys()]);
    return out;
  }

  // A live iterator over the rooms, resumed each flush: no per-flush copy of the room list.
  private refreshSlice(): string[] {
    const n = this.local.size;
    if (n === 0) return [];
    const take = Math.ceil(n / Math.max(1, this.refreshSpread));
    const out: string[] = [];
    for (let restarted = false; out.length < take; ) {
      const next = this.refreshCursor.next();
      if (next.done) {
        if (restarted) break;
        restarted = true;
        this.refreshCursor = this.local.keys();
        continue;
      }
      out.push(next.value);
    }
    return out;
  }
}
