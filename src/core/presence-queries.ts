// Presence queries: who is in a room, across the deployment. A room's members are this node's own
// (known exactly, unflushed changes included) plus the other nodes' as the store has them.
//
// Bounded, because a query's cost is the room's size and a client can ask as often as its rate
// limit lets it (a red-team run: one user, 4 sockets, 190 presence requests/s each on a 4,000-member
// room filled Redis's output buffer for the gateway's connection with ~1 GB of replies and took the
// node out of service):
// - concurrent queries of one room share one store read, and its answer serves later queries of
//   that room for `cacheMs`: Redis sees at most one read per room per `cacheMs` per node;
// - at most `maxRooms` rooms are read at once per node; beyond, a query answers UNAVAILABLE at once;
// - a session has at most `perSession` queries waiting (the caller checks, core/rooms.ts).
// A presence notification for a room (a node wrote a change of it to the store, then told the room)
// drops the room's cached answer, and a read in flight is not kept: a client told that someone left
// does not see them in its next answer. Notifications come once per room per presence flush per
// node, so the reads they cause stay bounded by the flushes.
import type { PresenceTracker } from '../presence/tracker.js';
import { StoreUnavailable, type PresenceStore } from '../stores/ports.js';
import { withTimeout } from './timeout.js';

interface Cached {
  readonly users: readonly string[];
  readonly at: number;
}

export interface PresenceQueryLimits {
  readonly lookupTimeoutMs: number;
  /** how long an answer from the store serves later queries of the same room */
  readonly cacheMs: number;
  /** rooms read from the store at once, per node */
  readonly maxRooms: number;
  /** cached answers kept (first in, first out) */
  readonly maxCached: number;
}

export class PresenceQueries {
  private readonly inFlight = new Map<string, Promise<readonly string[]>>();
  private readonly cached = new Map<string, Cached>();
  /** reads in flight whose answer came too late to keep (a change was told meanwhile) */
  private readonly stale = new Set<Promise<readonly string[]>>();
  /** store reads issued (for tests and metrics) */
  reads = 0;

  constructor(
    private readonly store: PresenceStore,
    private readonly tracker: PresenceTracker,
    private readonly nodeId: string,
    private readonly limits: PresenceQueryLimits,
    private readonly now: () => number,
  ) {}

  /**
   * The room's members, sorted; rejects when the store cannot answer in time (a store that throws
   * at once is a bug, and throws to the caller).
   */
  members(room: string): Promise<string[]> {
    // The read stays shared until the store answers, even after this caller gave up waiting: a
    // stalled Redis then holds one read per room, not one per query.
    return withTimeout(this.others(room), this.limits.lookupTimeoutMs, 'presence query').then((others) => {
      const local = this.tracker.localMembers(room);
      if (local.length === 0) return [...others];
      return [...new Set([...others, ...local])].sort();
    });
  }

  private others(room: string): Promise<readonly string[]> {
    const hit = this.cached.get(room);
    if (hit !== undefined && this.now() - hit.at < this.limits.cacheMs) return Promise.resolve(hit.users);
    const waiting = this.inFlight.get(room);
    if (waiting !== undefined) return waiting;
    if (this.inFlight.size + this.stale.size >= this.limits.maxRooms) return Promise.reject(new StoreUnavailable('too many presence queries in flight'));
    this.reads++;
    const read: Promise<readonly string[]> = this.store.members(room, this.nodeId).then((users) => {
      if (!this.stale.has(read)) this.remember(room, users);
      return users;
    });
    this.inFlight.set(room, read);
    const done = (): void => {
      if (this.inFlight.get(room) === read) this.inFlight.delete(room);
      this.stale.delete(read);
    };
    read.then(done, done);
    return read;
  }

  /** The room's membership changed (a presence notification): its next query reads the store again. */
  changed(room: string): void {
    this.cached.delete(room);
    const read = this.inFlight.get(room);
    if (read === undefined) return;
    this.inFlight.delete(room);
    this.stale.add(read);
  }

  private remember(room: string, users: readonly string[]): void {
    if (this.cached.size >= this.limits.maxCached && !this.cached.has(room)) {
      const oldest = this.cached.keys().next();
      if (!oldest.done) this.cached.delete(oldest.value);
    }
    this.cached.delete(room); // re-inserted last
    this.cached.set(room, { users, at: this.now() });
  }
}
