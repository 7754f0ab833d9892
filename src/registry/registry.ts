// The connection registry's batched writer: opens and closes change a pending map at once
// (O(1), no I/O on the socket path); flush() sends them as one store batch per interval.
// A connection opened and closed within one interval never reaches the store. A failed flush
// puts its changes back (newer changes win), so nothing is lost while Redis is away. The pending
// map holds at most one entry per connection the store knows or should know; past `maxPending`
// entries it is dropped and the next successful flush rewrites the node's whole registry.
import type { ConnectionEntry, RegistryStore } from '../stores/ports.js';

/** Told of every flush that settled: entries written, seconds it took, whether it succeeded. */
export type FlushObserver = (entries: number, seconds: number, ok: boolean) => void;

export class ConnectionRegistry {
  /** connId -> entry to write, or null to delete. */
  private pending = new Map<string, ConnectionEntry | null>();
  /** connIds whose add has been handed to the store (so a removal must be written). */
  private readonly sent = new Set<string>();
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
    private readonly snapshot: () => ConnectionEntry[],
    private readonly maxPending = Infinity,
    private readonly observe: FlushObserver = () => undefined,
  ) {}

  add(entry: ConnectionEntry): void {
    if (this.needFull) return; // the full rewrite will carry it
    this.pending.set(entry.connId, entry);
    this.bound();
  }

  remove(connId: string): void {
    if (this.needFull) return;
    if (this.sent.has(connId)) this.pending.set(connId, null);
    else this.pending.delete(connId);
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
      for (const e of this.snapshot()) {
        upserts.push(e);
        this.sent.add(e.connId);
      }
    } else {
      for (const [id, e] of batch) {
        if (e) {
          upserts.push(e);
          this.sent.add(id);
        } else {
          removals.push(id);
          this.sent.delete(id);
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
            for (const [id, e] of batch) {
              if (this.pending.has(id)) continue; // something newer is pending
              this.pending.set(id, e);
              if (e === null) this.sent.add(id);
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

  /** Clean shutdown: the node's entries go at once rather than by TTL. */
  async clear(): Promise<void> {
    this.pending.clear();
    this.sent.clear();
    await this.store.removeNode(this.nodeId);
  }
}
