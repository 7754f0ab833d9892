// The batched writers (registry, presence), against the memory stores and
// a store that counts and fails on demand.
import { describe, expect, it } from 'vitest';
import { PresenceTracker } from '../../src/presence/tracker.js';
import { ConnectionRegistry } from '../../src/registry/registry.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import { MemoryRegistryStore } from '../../src/stores/memory/registry.js';
import type { ApplyResult, ConnectionEntry, PresenceBatch, PresenceStore, RegistryBatch, RegistryStore } from '../../src/stores/ports.js';

// one object per id: the registry knows connections by identity
const made = new Map<string, ConnectionEntry & { id: string }>();
const e = (id: string): ConnectionEntry & { id: string } => {
  let x = made.get(id);
  if (!x) made.set(id, (x = { id, connId: id, nodeId: 'n', userId: 'u', tenantId: 't', since: 1, exp: 2 }));
  return x;
};

class Flaky<B> {
  batches: B[] = [];
  fail = false;
  lost = false;
  apply(_node: string, b: B): Promise<ApplyResult> {
    this.batches.push(b);
    if (this.fail) return Promise.reject(new Error('down'));
    return Promise.resolve({ lost: this.lost });
  }
}

describe('ConnectionRegistry (batched writer)', () => {
  it('first flush is a full snapshot; later flushes carry only changes', async () => {
    const store = new Flaky<RegistryBatch>();
    const live = [e('a')];
    const reg = new ConnectionRegistry(store as unknown as RegistryStore, 'n', () => live);
    reg.add(e('a'));
    await reg.flush();
    expect(store.batches[0]).toEqual({ upserts: [e('a')], removals: [], full: true });
    reg.add(e('b'));
    reg.remove(e('a'));
    await reg.flush();
    expect(store.batches[1]).toEqual({ upserts: [e('b')], removals: ['a'], full: false });
  });

  it('a connection opened and closed within one interval never reaches the store', async () => {
    const store = new Flaky<RegistryBatch>();
    const reg = new ConnectionRegistry(store as unknown as RegistryStore, 'n', () => []);
    await reg.flush();
    reg.add(e('x'));
    reg.remove(e('x'));
    await reg.flush();
    expect(store.batches[1]).toEqual({ upserts: [], removals: [], full: false });
  });

  it('a failed flush keeps its changes (newer ones win) and retries them', async () => {
    const store = new Flaky<RegistryBatch>();
    const reg = new ConnectionRegistry(store as unknown as RegistryStore, 'n', () => []);
    await reg.flush();
    reg.add(e('a'));
    reg.add(e('b'));
    store.fail = true;
    await expect(reg.flush()).rejects.toThrow('down');
    reg.remove(e('b'));
    store.fail = false;
    await reg.flush();
    const last = store.batches.at(-1)!;
    expect(last.upserts).toEqual([e('a')]);
    expect(last.removals).toEqual(['b']);
  });

  it('when the store lost the node, the next flush resends everything', async () => {
    const store = new Flaky<RegistryBatch>();
    const reg = new ConnectionRegistry(store as unknown as RegistryStore, 'n', () => [e('a'), e('b')]);
    await reg.flush();
    store.lost = true;
    await reg.flush();
    store.lost = false;
    await reg.flush();
    expect(store.batches[2]).toEqual({ upserts: [e('a'), e('b')], removals: [], full: true });
  });

  it('works end to end on the memory store', async () => {
    const store = new MemoryRegistryStore(30);
    const live: Array<ConnectionEntry & { id: string }> = [];
    const reg = new ConnectionRegistry(store, 'n', () => live);
    await reg.flush();
    live.push(e('a'));
    reg.add(e('a'));
    await reg.flush();
    expect((await store.list()).map((x) => x.connId)).toEqual(['a']);
    live.pop();
    reg.remove(e('a'));
    await reg.flush();
    expect(await store.list()).toEqual([]);
  });
});

describe('PresenceTracker', () => {
  it('a user with several connections is present once and leaves with the last', async () => {
    const store = new MemoryPresenceStore(30);
    const t = new PresenceTracker(store, 'n', 10);
    expect(t.join('r', 'alice')).toBe(true);
    expect(t.join('r', 'alice')).toBe(false);
    await t.flush();
    expect(await store.members('r')).toEqual(['alice']);
    expect(t.leave('r', 'alice')).toBe(false);
    await t.flush();
    expect(await store.members('r')).toEqual(['alice']);
    expect(t.leave('r', 'alice')).toBe(true);
    await t.flush();
    expect(await store.members('r')).toEqual([]);
  });

  it('counts the connections in each room (a publish\'s fan-out here) and tells each flush\'s size and time', async () => {
    const seen: Array<[number, boolean]> = [];
    const t = new PresenceTracker(new MemoryPresenceStore(30), 'n', 10, Infinity, (entries, seconds, ok) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      seen.push([entries, ok]);
    });
    t.join('r', 'alice');
    t.join('r', 'alice');
    t.join('r', 'bob');
    t.join('s', 'bob');
    expect([t.connections('r'), t.connections('s'), t.connections('x')]).toEqual([3, 1, 0]);
    expect(t.leave('x', 'bob')).toBe(false); // not a member: nothing changes
    t.leave('r', 'alice');
    expect(t.connections('r')).toBe(2);
    await t.flush(); // the first flush writes the whole state: 2 rooms
    t.leave('r', 'alice');
    t.leave('r', 'bob');
    expect(t.connections('r')).toBe(0);
    await t.flush(); // one room changed
    expect(seen).toEqual([[2, true], [1, true]]);
  });

  it('a flush carries only the rooms that changed, plus a bounded refresh slice', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4);
    for (let i = 0; i < 100; i++) t.join(`room${i}`, `u${i}`);
    await t.flush(); // first flush: full
    t.join('room7', 'zed');
    t.leave('room8', 'u8');
    const changes = await t.flush();
    const b = store.batches[1]!;
    expect(b.full).toBeUndefined();
    expect([...b.added]).toEqual([['room7', ['zed']]]);
    expect([...b.removed]).toEqual([['room8', ['u8']]]);
    expect(b.refresh.length).toBe(25); // 99 rooms / spread 4
    expect(changes).toEqual([{ room: 'room7', joined: ['zed'], left: [] }, { room: 'room8', joined: [], left: ['u8'] }]);
  });

  it('join then leave within an interval writes nothing for that user', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4);
    await t.flush();
    t.join('r', 'a');
    t.leave('r', 'a');
    await t.flush();
    expect(store.batches[1]!.added.size + store.batches[1]!.removed.size).toBe(0);
  });

  it('failed flushes merge back under newer changes; a lost store gets the full state', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4);
    await t.flush();
    t.join('r', 'a');
    t.join('r', 'b');
    store.fail = true;
    await expect(t.flush()).rejects.toThrow();
    t.leave('r', 'b');
    store.fail = false;
    await t.flush();
    const b = store.batches.at(-1)!;
    expect(b.added.get('r')).toEqual(['a']);
    expect(b.removed.get('r')).toBeUndefined();
    store.lost = true;
    await t.flush();
    store.lost = false;
    await t.flush();
    expect(store.batches.at(-1)!.full).toEqual(new Map([['r', ['a']]]));
  });
});

describe('bounded buffers (Redis away)', () => {
  it('presence: rooms whose changes cancel out leave nothing behind', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4, 10);
    await t.flush();
    store.fail = true;
    for (let i = 0; i < 10_000; i++) {
      t.join(`new/${i}`, 'u');
      t.leave(`new/${i}`, 'u');
    }
    expect(t.pendingRooms).toBe(0);
    expect(t.overflows).toBe(0);
  });

  it('presence: past maxPending rooms the buffer collapses into one full rewrite of exactly the local state', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4, 10);
    t.join('stay', 'a');
    await t.flush();
    store.fail = true;
    for (let i = 0; i < 1000; i++) {
      t.join(`r${i}`, 'u');
      expect(t.pendingRooms).toBeLessThanOrEqual(10);
    }
    for (let i = 0; i < 990; i++) t.leave(`r${i}`, 'u');
    t.leave('stay', 'a');
    expect(t.overflows).toBeGreaterThan(0);
    await expect(t.flush()).rejects.toThrow();
    expect(t.pendingRooms).toBeLessThanOrEqual(10);
    store.fail = false;
    await t.flush();
    const last = store.batches.at(-1)!;
    expect(last.full).toEqual(new Map(Array.from({ length: 10 }, (_, i) => [`r${990 + i}`, ['u']])));
  });

  it('presence: a failed full flush is retried as a full flush', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4, 10);
    t.join('r', 'a');
    store.fail = true;
    await expect(t.flush()).rejects.toThrow();
    store.fail = false;
    await t.flush();
    expect(store.batches.at(-1)!.full).toEqual(new Map([['r', ['a']]]));
  });

  it('presence: rooms left by their last local member are reported vacated', async () => {
    const store = new Flaky<PresenceBatch>();
    const t = new PresenceTracker(store as unknown as PresenceStore, 'n', 4);
    t.join('r1', 'a');
    t.join('r2', 'b');
    await t.flush();
    t.leave('r1', 'a');
    t.join('r2', 'c');
    await t.flush();
    expect(store.batches.at(-1)!.vacated).toEqual(['r1']);
  });

  it('registry: past maxPending changes the buffer collapses into one full rewrite', async () => {
    const store = new Flaky<RegistryBatch>();
    const live: Array<ConnectionEntry & { id: string }> = [];
    const reg = new ConnectionRegistry(store as unknown as RegistryStore, 'n', () => live, 5);
    await reg.flush();
    store.fail = true;
    for (let i = 0; i < 100; i++) {
      live.push(e(`c${i}`));
      reg.add(e(`c${i}`));
      expect(reg.pendingCount).toBeLessThanOrEqual(5);
    }
    await expect(reg.flush()).rejects.toThrow();
    expect(reg.overflows).toBeGreaterThan(0);
    store.fail = false;
    await reg.flush();
    const last = store.batches.at(-1)!;
    expect(last.full).toBe(true);
    expect(last.upserts.length).toBe(100);
  });
});
