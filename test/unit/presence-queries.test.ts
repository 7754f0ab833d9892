// Presence queries (core/presence-queries.ts) over the embedded store and two trackers playing two
// nodes: one store read per room is shared and cached, and a presence notification drops the cache.
import { describe, expect, it } from 'vitest';
import { PresenceQueries } from '../../src/core/presence-queries.js';
import { PresenceTracker } from '../../src/presence/tracker.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import type { PresenceStore } from '../../src/stores/ports.js';

/** The embedded store, counting reads and able to hold them until released. */
class SlowStore implements PresenceStore {
  reads = 0;
  private held: Array<() => void> = [];
  hold = false;
  constructor(private readonly inner: MemoryPresenceStore) {}
  apply: PresenceStore['apply'] = (n, b) => this.inner.apply(n, b);
  removeNode: PresenceStore['removeNode'] = (n) => this.inner.removeNode(n);
  members(room: string, exceptNode?: string): Promise<string[]> {
    this.reads++;
    const answer = this.inner.members(room, exceptNode);
    if (!this.hold) return answer;
    return new Promise((resolve) => this.held.push(() => resolve(answer)));
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

function setup() {
  let t = 1_000;
  const shared = new MemoryPresenceStore(60);
  const store = new SlowStore(shared);
  const a = new PresenceTracker(shared, 'a', 1);
  const b = new PresenceTracker(shared, 'b', 1);
  const q = new PresenceQueries(store, a, 'a', { lookupTimeoutMs: 1000, cacheMs: 250, maxRooms: 2, maxCached: 100 }, () => t);
  return { store, a, b, q, tick: (ms: number) => (t += ms) };
}

describe('presence queries', () => {
  it('share one read per room, answer from it for 250 ms, then read again', async () => {
    const { store, b, q, tick } = setup();
    b.join('r', 'bob');
    await b.flush();
    expect(await Promise.all([q.members('r'), q.members('r')])).toEqual([['bob'], ['bob']]);
    b.join('r', 'cy');
    await b.flush();
    expect(await q.members('r')).toEqual(['bob']); // cached
    expect(store.reads).toBe(1);
    tick(250);
    expect(await q.members('r')).toEqual(['bob', 'cy']);
    expect(store.reads).toBe(2);
  });

  it('a presence notification drops the cached answer, and a read in flight when it came is not kept', async () => {
    const { store, b, q } = setup();
    b.join('r', 'ghost');
    await b.flush();
    expect(await q.members('r')).toEqual(['ghost']);
    b.leave('r', 'ghost');
    await b.flush();
    q.changed('r'); // what FanOut does when b's notification arrives
    expect(await q.members('r')).toEqual([]);
    // a read started before a change: its answer serves its own waiters, not later queries
    store.hold = true;
    const before = q.members('r');
    b.join('r', 'late');
    await b.flush();
    q.changed('r');
    store.hold = false;
    const after = q.members('r');
    store.release();
    expect(await before).toEqual([]);
    expect(await after).toEqual(['late']);
    expect(await q.members('r')).toEqual(['late']);
  });

  it('local members are exact without a read; reads in flight are bounded, stale ones included', async () => {
    const { store, a, q } = setup();
    a.join('mine', 'me'); // not flushed
    expect(await q.members('mine')).toEqual(['me']);
    store.hold = true;
    const x = q.members('x');
    q.changed('x'); // x's read is stale now, and still counts
    const y = q.members('y');
    await expect(q.members('z')).rejects.toThrow(/too many presence queries/);
    store.release();
    await Promise.all([x, y]);
    store.hold = false;
    expect(await q.members('z')).toEqual([]);
  });
});
