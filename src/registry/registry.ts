// The connection registry's batched writer: opens and closes change a pending map at once
// (O(1), no I/O on the socket path); flush() sends them as one store batch per interval.
// A connection opened and closed within one interval never reaches the store. A failed flush
// puts its changes back (newer changes win), so nothing is lost while Redis is away. The pending
// map holds at most one entry per connection the store knows or should know; past `maxPending`
// entries it is dropped and the next successful flush rewrites the node's whole registry.
//
// It is told of connections as objects (the core's sessions) and builds their entries only at
// flush time: an open or a close allocates nothing and hashes no string (object keys; keyed by id
// strings, the two map operations of a short connection cost ~4% of its upgrade path, profiled).
import type { ConnectionEntry, RegistryStore } from '../stores/ports.js';

/** Told of every flush that settled: entries written, seconds it took, whether it succeeded. */
export type FlushObserver = (entries: number, seconds: number, ok: boolean) => void;

/** What the registry is told of: a connection with an id, whose entry is built at flush time. */
export interface Registrable {
  readonly id: string;
}

export class ConnectionRegistry<T extends Registrable = ConnectionEntry & Registrable> {
  /** connection -> true to write, false to delete */
  private pending = new Map<T, boolean>();
  /** connections whose add has been handed to the store (so a removal must be written) */
  private readonly sent = new Set<T>();
  private flushing: Promise<void> | undefined;
  /** Send every live connection next time (first flush, or the store lost this node's state). */
  private needFull = true;
  flushes = 0;
  failures = 0;
  /** times the buffer exceeded maxPending and was replaced by a full rewrite */
  overflows = 0;

  constructor(
    private readonly store: RegistryStore,
    private readonly nodeId: string,
    /** Every live connection of this node, for a resync after the store lost its state. */
    private readonly snapshot: () => Iterable<T>,
    private readonly maxPending = Infinity,
    /** the entry of a connection, built at flush */
    private readonly toEntry: (t: T) => ConnectionEntry = (t) => t as unknown as ConnectionEntry,
    private readonly observe: FlushObserver = () => undefined,
  ) {}

  /** A connection opened, or its entry changed (a refresh): written at the next flush. */
  add(item: T): void {
    if (this.needFull) return; // the full rewrite will carry it
    this.pending.set(item, true);
    this.bound();
  }

  remove(item: T): void {
    if (this.needFull) return;
    if (this.sent.has(item)) this.pending.set(item, false);
    else this.pending.delete(item);
    this.bound();
  }

  private bound(): void {
    if (this.pending.size <= this.maxPending) return;
    this.overflows++;
    this.pending.clear();
    this.needFull = true;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Writes pending changes (and the heartbeat). Concurrent calls share the one in flight. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    const full = this.needFull;
    this.needFull = false;
    const upserts: ConnectionEntry[] = [];
    const removals: string[] = [];
    if (full) {
      this.sent.clear();
      for (const t of this.snapshot()) {
        upserts.push(this.toEntry(t));
        this.sent.add(t);
      }
    } else {
      for (const [t, write] of batch) {
        if (write) {
          upserts.push(this.toEntry(t));
          this.sent.add(t);
        } else {
          removals.push(t.id);
          this.sent.delete(t);
        }
      }
    }
    const t0 = performance.now();
    const entries = upserts.length + removals.length;
    this.flushing = this.store
      .apply(this.nodeId, { upserts, removals, full })
      .then(
        (res) => {
          this.observe(entries, (performance.now() - t0) / 1000, true);
          this.flushes++;
          if (res.lost && !full) this.needFull = true;
        },
        (err: unknown) => {
          this.observe(entries, (performance.now() - t0) / 1000, false);
          this.failures++;
          if (full) this.needFull = true;
          if (!this.needFull) {
            for (const [t, write] of batch) {
              if (this.pending.has(t)) continue; // something newer is pending
              this.pending.set(t, write);
              if (!write) this.sent.add(t);
            }
            this.bound();
          }
          throw err;
        },
      )
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** The nodes whose heartbeat the store has within its TTL (this one included once it flushed). */
  liveNodes(): Promise<string[]> {
    return this.store.liveNodes();
  }

  /** Clean shutdown: the node's entries go at once rather than by TTL. */
  async clear(): Promise<void> {
    this.pending.clear();
    this.sent.clear();
    await this.store.removeNode(this.nodeId);
  }
}
