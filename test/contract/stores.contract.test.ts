// One contract per store port, run against the memory implementation, a single Redis (a real
// redis-server) and a Redis Cluster (three masters with a replica each, started by the test).
// Each test gets its own key prefix.
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisClusterServer } from '../../bench/lib/redis-cluster.js';
import { MemoryBus, MemoryBusHub } from '../../src/stores/memory/bus.js';
import { MemoryCapStore } from '../../src/stores/memory/caps.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import { MemoryRegistryStore } from '../../src/stores/memory/registry.js';
import { MemoryRevocationStore } from '../../src/stores/memory/revocation.js';
import type { Bus, CapStore, ConnectionEntry, PresenceStore, RegistryStore, RevocationStore } from '../../src/stores/ports.js';
import { RedisBus, type BusChannels } from '../../src/stores/redis/bus.js';
import { RedisCapStore } from '../../src/stores/redis/caps.js';
import { createRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/client.js';
import { ClusterRevocationMirror } from '../../src/stores/redis/cluster-revocation-mirror.js';
import { RedisPresenceStore } from '../../src/stores/redis/presence.js';
import { RedisRegistryStore } from '../../src/stores/redis/registry.js';
import { RedisRevocationStore } from '../../src/stores/redis/revocation.js';
import { RedisRevocationMirror } from '../../src/stores/redis/revocation-mirror.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

let redis: TestRedis;
let cluster: RedisClusterServer;
const clients: RedisClient[] = [];
const closers: Array<() => void> = [];
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  for (const c of closers) c();
  for (const c of clients) c.disconnect();
  await Promise.all([redis.stop(), cluster.stop()]);
});

async function ready<T extends RedisClient>(c: T): Promise<T> {
  clients.push(c);
  if (c.status !== 'ready') await new Promise((r) => c.once('ready', r));
  return c;
}
const client = (): Promise<Redis> => ready(createRedis({ url: redis.url, name: 'contract' }));
const clusterClient = (): Promise<Cluster> => ready(createRedisClient({ url: cluster.urls, cluster: true, name: 'contract' }) as Cluster);

interface Impl {
  name: string;
  revocation: () => Promise<RevocationStore>;
  /** Writes a revocation the way the seed's auth service does (a plain SET), where the store has a backing server. */
  revokeFromOutside?: (store: RevocationStore, jti: string, ttlSec: number) => Promise<void>;
  /** The store learns of revocations by itself (onRevoked is called). */
  pushes: boolean;
  /** Two handles on one backing store (two nodes of one deployment). */
  registry: (ttlSec: number) => Promise<[RegistryStore, RegistryStore]>;
  presence: (ttlSec: number) => Promise<[PresenceStore, PresenceStore]>;
  /** Two nodes' buses; `perRoom`: a bus delivers only the rooms its node watches. */
  bus: () => Promise<[Bus, Bus]>;
  perRoom: boolean;
  caps: (userCap: number, tenantCap: number, ttlSec: number) => Promise<[CapStore, CapStore]>;
  /** The backing store forgets everything (a Redis restarted empty). */
  wipe: () => Promise<void>;
  /** The ports this entry is about (default: all); a variant of another entry lists only what differs. */
  only?: ReadonlyArray<'revocation' | 'bus'>;
}

const memoryBacking: { wipe?: () => void } = {};
const prefixes = new Map<RevocationStore, string>();

/** The Redis implementations of every port on one client factory (a single Redis, or a cluster). */
function redisImpl(name: string, connect: () => Promise<RedisClient>, subscriber: (sharded: boolean) => RedisClient, wipe: () => Promise<void>, channels: BusChannels = 'room'): Impl {
  return {
    name,
    pushes: false,
    revocation: async () => new RedisRevocationStore(await connect(), `revoked-${randomUUID()}:`, 1000),
    registry: async (ttl) => {
      const p = `c-${randomUUID()}:`;
      return [new RedisRegistryStore(await connect(), p, ttl), new RedisRegistryStore(await connect(), p, ttl)];
    },
    presence: async (ttl) => {
      const p = `c-${randomUUID()}:`;
      return [new RedisPresenceStore(await connect(), p, ttl), new RedisPresenceStore(await connect(), p, ttl)];
    },
    bus: async () => {
      const p = `bus-${randomUUID()}:`;
      return [new RedisBus(await connect(), subscriber(channels === 'room'), p, channels), new RedisBus(await connect(), subscriber(channels === 'room'), p, channels)];
    },
    perRoom: channels === 'room',
    caps: async (u, t, ttl) => {
      const p = `c-${randomUUID()}:`;
      return [new RedisCapStore(await connect(), p, u, t, ttl, 2000), new RedisCapStore(await connect(), p, u, t, ttl, 2000)];
    },
    wipe,
  };
}

const singleSub = (): RedisClient => {
  const c = createRedis({ url: redis.url, name: 'sub', offlineQueue: true });
  clients.push(c);
  return c;
};
const clusterSub = (sharded: boolean): RedisClient => {
  const c = createRedisClient({ url: cluster.urls, cluster: true, name: 'sub', offlineQueue: true, shardedSubscribers: sharded });
  clients.push(c);
  return c;
};
const wipeRedis = async (): Promise<void> => void (await redis.client.flushall());
const wipeCluster = async (): Promise<void> => {
  for (const m of await cluster.masters()) await m.client.flushall();
};

const singleRedis = redisImpl('redis', client, singleSub, wipeRedis);
const onCluster = redisImpl('redis-cluster', clusterClient, clusterSub, wipeCluster);

const impls: Impl[] = [
  {
    name: 'memory',
    pushes: true,
    revocation: async () => new MemoryRevocationStore(),
    registry: async (ttl) => {
      const s = new MemoryRegistryStore(ttl);
      memoryBacking.wipe = () => (s as unknown as { nodes: Map<string, unknown> }).nodes.clear();
      return [s, s];
    },
    presence: async (ttl) => {
      const s = new MemoryPresenceStore(ttl);
      memoryBacking.wipe = () => (s as unknown as { nodes: Map<string, unknown> }).nodes.clear();
      return [s, s];
    },
    bus: async () => {
      const hub = new MemoryBusHub();
      return [new MemoryBus(hub), new MemoryBus(hub)];
    },
    perRoom: true,
    caps: async (u, t, ttl) => {
      const s = new MemoryCapStore(u, t, ttl);
      memoryBacking.wipe = () => (s as unknown as { nodes: Map<string, unknown> }).nodes.clear();
      return [s, s];
    },
    wipe: async () => memoryBacking.wipe?.(),
  },
  singleRedis,
  {
    // The Redis revocation mirror (WSGATE_REVOCATION_MODE=mirror); the other ports are the Redis ones.
    ...singleRedis,
    name: 'redis-mirror',
    only: ['revocation'],
    pushes: true,
    revocation: async () => {
      const prefix = `revoked-${randomUUID()}:`;
      const tracking = createRedis({ url: redis.url, name: 'mirror', autoResubscribe: false });
      clients.push(tracking);
      const m = new RedisRevocationMirror(await client(), tracking, prefix, 1000);
      closers.push(() => m.close());
      prefixes.set(m, prefix);
      await until(() => m.isReady);
      return m;
    },
    revokeFromOutside: async (store, jti, ttlSec) => void (await redis.client.set(`${prefixes.get(store)}${jti}`, '1', 'EX', ttlSec)),
  },
  {
    // The single-channel bus (WSGATE_BUS_CHANNELS=single): every node receives every room.
    ...redisImpl('redis-single-channel', client, singleSub, wipeRedis, 'single'),
    only: ['bus'],
  },
  onCluster,
  {
    // The revocation mirror on a cluster: one mirror per master.
    ...onCluster,
    name: 'redis-cluster-mirror',
    only: ['revocation'],
    pushes: true,
    revocation: async () => {
      const prefix = `revoked-${randomUUID()}:`;
      const m = new ClusterRevocationMirror(await clusterClient(), cluster.urls, 'contract', prefix, 1000);
      closers.push(() => m.close());
      prefixes.set(m, prefix);
      await until(() => m.isReady);
      return m;
    },
    revokeFromOutside: async (store, jti, ttlSec) => void (await cluster.client.set(`${prefixes.get(store)}${jti}`, '1', 'EX', ttlSec)),
  },
];

const covers = (impl: Impl, port: 'revocation' | 'registry' | 'presence' | 'bus' | 'caps'): boolean => impl.only === undefined || (impl.only as readonly string[]).includes(port);

const entry = (connId: string, nodeId: string, userId = 'u'): ConnectionEntry => ({ connId, nodeId, userId, tenantId: 't', since: 1000, exp: 2000 });
const batch = (added: Record<string, string[]> = {}, removed: Record<string, string[]> = {}, refresh: string[] = [], vacated: string[] = []) => ({
  added: new Map(Object.entries(added)),
  removed: new Map(Object.entries(removed)),
  vacated,
  refresh,
});

for (const impl of impls) {
  if (covers(impl, 'revocation')) describe(`RevocationStore (${impl.name})`, () => {
    it('is not revoked until revoked, then revoked for the TTL', async () => {
      const s = await impl.revocation();
      expect(await s.isRevoked('j1')).toBe(false);
      await s.revoke('j1', 1);
      expect(await s.isRevoked('j1')).toBe(true);
      expect(await s.isRevoked('j2')).toBe(false);
      await until(async () => !(await s.isRevoked('j1')), 3000);
    });

    it('isRevokedNow answers at once where the store can (never a wrong answer: true, false, or undefined = ask isRevoked)', async () => {
      const s = await impl.revocation();
      await s.revoke('now-1', 60);
      const a = s.isRevokedNow('now-1');
      const b = s.isRevokedNow('now-2');
      expect(a === true || a === undefined).toBe(true);
      expect(b === false || b === undefined).toBe(true);
      if (impl.pushes) expect([a, b]).toEqual([true, false]);
    });

    it(impl.pushes ? 'learns of revocations written by others and tells onRevoked' : 'does not push revocations (lookup mode)', async () => {
      const s = await impl.revocation();
      const told: string[] = [];
      s.onRevoked((jti) => told.push(jti));
      if (impl.revokeFromOutside) await impl.revokeFromOutside(s, 'outside-1', 60);
      else await s.revoke('outside-1', 60);
      if (!impl.pushes) {
        expect(await s.isRevoked('outside-1')).toBe(true);
        expect(told).toEqual([]);
        return;
      }
      await until(() => told.includes('outside-1'));
      expect(s.isRevokedNow('outside-1')).toBe(true);
      expect(await s.isRevoked('outside-1')).toBe(true);
    });

    it('answers many concurrent lookups correctly', async () => {
      const s = await impl.revocation();
      await s.revoke('odd-1', 60);
      await s.revoke('odd-3', 60);
      const res = await Promise.all(['odd-0', 'odd-1', 'odd-2', 'odd-3'].map((j) => s.isRevoked(j)));
      expect(res).toEqual([false, true, false, true]);
    });
  });

  if (covers(impl, 'registry')) describe(`RegistryStore (${impl.name})`, () => {
    it('applies upserts and removals per node and lists every live node', async () => {
      const [a, b] = await impl.registry(30);
      expect((await a.apply('n1', { upserts: [entry('c1', 'n1'), entry('c2', 'n1')], removals: [] })).lost).toBe(true);
      expect((await b.apply('n2', { upserts: [entry('c3', 'n2')], removals: [] })).lost).toBe(true);
      expect((await a.apply('n1', { upserts: [], removals: ['c1'] })).lost).toBe(false);
      const ids = (await b.list()).map((e) => `${e.nodeId}/${e.connId}`).sort();
      expect(ids).toEqual(['n1/c2', 'n2/c3']);
      expect((await a.list()).find((e) => e.connId === 'c3')).toEqual(entry('c3', 'n2'));
    });

    it('full replaces the node\'s entries', async () => {
      const [a] = await impl.registry(30);
      await a.apply('n1', { upserts: [entry('c1', 'n1'), entry('c2', 'n1')], removals: [] });
      await a.apply('n1', { upserts: [entry('c9', 'n1')], removals: [], full: true });
      expect((await a.list()).map((e) => e.connId)).toEqual(['c9']);
    });

    it('a node that stops applying vanishes after the TTL (crash safety)', async () => {
      const [a, b] = await impl.registry(1);
      await a.apply('dead', { upserts: [entry('c1', 'dead')], removals: [] });
      await b.apply('alive', { upserts: [entry('c2', 'alive')], removals: [] });
      expect((await b.list()).map((e) => e.connId).sort()).toEqual(['c1', 'c2']);
      // the live node keeps applying (its heartbeat); the dead one does not
      await until(async () => {
        await b.apply('alive', { upserts: [], removals: [] });
        return (await b.list()).map((e) => e.connId).join() === 'c2';
      }, 4000, 200);
    });

    it('removeNode drops a node at once', async () => {
      const [a] = await impl.registry(30);
      await a.apply('n1', { upserts: [entry('c1', 'n1')], removals: [] });
      await a.removeNode('n1');
      expect(await a.list()).toEqual([]);
    });

    it('reports lost when the store forgot the node', async () => {
      const [a] = await impl.registry(30);
      await a.apply('n1', { upserts: [entry('c1', 'n1')], removals: [] });
      await impl.wipe();
      expect((await a.apply('n1', { upserts: [], removals: [] })).lost).toBe(true);
    });
  });

  if (covers(impl, 'presence')) describe(`PresenceStore (${impl.name})`, () => {
    it('a room\'s members are the union over nodes, each user once', async () => {
      const [a, b] = await impl.presence(30);
      await a.apply('n1', batch({ r1: ['alice', 'bob'] }));
      await b.apply('n2', batch({ r1: ['bob', 'carol'], r2: ['dave'] }));
      expect(await a.members('r1')).toEqual(['alice', 'bob', 'carol']);
      expect(await a.members('r2')).toEqual(['dave']);
      expect(await a.members('r3')).toEqual([]);
      await a.apply('n1', batch({}, { r1: ['bob'] }));
      expect(await b.members('r1')).toEqual(['alice', 'bob', 'carol']);
      await b.apply('n2', batch({}, { r1: ['bob'] }));
      expect(await b.members('r1')).toEqual(['alice', 'carol']);
    });

    it('full replaces the node\'s state', async () => {
      const [a] = await impl.presence(30);
      await a.apply('n1', batch({ r1: ['alice'] }));
      await a.apply('n1', { ...batch(), full: new Map([['r1', ['zed']]]) });
      expect(await a.members('r1')).toEqual(['zed']);
    });

    it('a dead node\'s users vanish after the TTL; a live node keeps its rooms by refresh', async () => {
      const [a, b] = await impl.presence(1);
      await a.apply('dead', batch({ r1: ['ghost'] }));
      await b.apply('live', batch({ r1: ['alive'] }));
      expect(await b.members('r1')).toEqual(['alive', 'ghost']);
      const started = Date.now();
      await until(async () => {
        await b.apply('live', batch({}, {}, ['r1']));
        return (await b.members('r1')).join() === 'alive';
      }, 4000, 200);
      // the live node's set outlived its own TTL because each apply refreshed it
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(await b.members('r1')).toEqual(['alive']);
    });

    it('removeNode drops a node\'s users at once', async () => {
      const [a] = await impl.presence(30);
      await a.apply('n1', batch({ r1: ['alice'] }));
      await a.removeNode('n1', ['r1']);
      expect(await a.members('r1')).toEqual([]);
    });

    it('full leaves exactly the listed rooms: rooms the node had and does not list are removed', async () => {
      const [a] = await impl.presence(30);
      await a.apply('n1', batch({ r1: ['alice'], r2: ['bob'], r3: ['carol'] }));
      await a.apply('n1', batch({}, { r3: ['carol'] }, [], ['r3']));
      await a.apply('n1', { ...batch(), full: new Map([['r2', ['bob', 'dave']]]) });
      expect(await a.members('r1')).toEqual([]);
      expect(await a.members('r2')).toEqual(['bob', 'dave']);
      expect(await a.members('r3')).toEqual([]);
      // and removeNode still finds every room without being told
      await a.apply('n1', batch({ r4: ['erin'] }));
      await a.removeNode('n1', []);
      for (const r of ['r2', 'r4']) expect(await a.members(r)).toEqual([]);
    });

    it('reports lost when the store forgot the node', async () => {
      const [a] = await impl.presence(30);
      await a.apply('n1', batch({ r1: ['alice'] }));
      await impl.wipe();
      expect((await a.apply('n1', batch())).lost).toBe(true);
    });
  });

  if (covers(impl, 'bus')) describe(`Bus (${impl.name})`, () => {
    // Rooms that share a hash tag share a slot: on a cluster their channels are on one master and
    // one subscriber connection, so their order of delivery is the order of publishing.
    const room = (n: number): string => `r{same-slot}${n}`;

    it('delivers a room\'s payloads to the nodes that watch it, once ready() resolves', async () => {
      const [a, b] = await impl.bus();
      expect(a.distributed).toBe(true);
      const got: string[] = [];
      b.onMessage((p) => got.push(p.toString()));
      b.watch(room(1));
      await b.ready([room(1)]);
      expect(b.ready([room(1)])).toBeUndefined(); // confirmed: nothing more to wait for
      await a.publish(room(1), Buffer.from('hello'));
      await until(() => got.includes('hello'));
      expect(got).toEqual(['hello']);
      await a.close();
      await b.close();
    });

    it(impl.perRoom ? 'a node receives nothing of the rooms it does not watch, and nothing after unwatch' : 'single channel: every node receives every room', async () => {
      const [a, b] = await impl.bus();
      const got: string[] = [];
      b.onMessage((p) => got.push(p.toString()));
      b.watch(room(1));
      await b.ready([room(1)]);
      for (let i = 0; i < 20; i++) await a.publish(room(2), Buffer.from(`other-${i}`));
      await a.publish(room(1), Buffer.from('mine'));
      await until(() => got.includes('mine'));
      if (!impl.perRoom) {
        await until(() => got.length === 21);
        return;
      }
      expect(got).toEqual(['mine']);
      // after unwatch the room's channel is dropped: a later watch's confirmation comes after it
      b.unwatch(room(1));
      b.watch(room(3));
      await b.ready([room(3)]);
      await a.publish(room(1), Buffer.from('gone'));
      await a.publish(room(3), Buffer.from('marker'));
      await until(() => got.includes('marker'));
      expect(got).toEqual(['mine', 'marker']);
      await a.close();
      await b.close();
    });

    it('batches: many watches in one turn, each room delivered', async () => {
      const [a, b] = await impl.bus();
      const got = new Set<string>();
      b.onMessage((p) => got.add(p.toString()));
      const rooms = Array.from({ length: 200 }, (_, i) => `batch/${i}`);
      for (const r of rooms) b.watch(r);
      b.watch('batch/0'); // idempotent
      await b.ready(rooms);
      for (const r of rooms) await a.publish(r, Buffer.from(r));
      await until(() => got.size === rooms.length);
      await a.close();
      await b.close();
    });
  });

  if (covers(impl, 'caps')) describe(`CapStore (${impl.name})`, () => {
    it('a user cap holds across nodes; a release makes room again', async () => {
      const [a, b] = await impl.caps(2, 0, 30);
      expect(await a.reserve('n1', 't', 'alice')).toBe('ok');
      expect(await b.reserve('n2', 't', 'alice')).toBe('ok');
      expect(await a.reserve('n1', 't', 'alice')).toBe('user');
      expect(await b.reserve('n2', 't', 'alice')).toBe('user');
      expect(await b.reserve('n2', 't', 'bob')).toBe('ok'); // another user
      expect(await a.reserve('n1', 'other', 'alice')).toBe('ok'); // the same sub in another tenant is another user
      expect(await b.release('n2', 't', 'alice')).toBe(true);
      expect(await a.reserve('n1', 't', 'alice')).toBe('ok');
      expect(await a.release('n1', 't', 'nobody')).toBe(false); // nothing to release: the node should rewrite
    });

    it('a tenant cap holds across nodes and users', async () => {
      const [a, b] = await impl.caps(0, 3, 30);
      const verdicts = [await a.reserve('n1', 't', 'u1'), await b.reserve('n2', 't', 'u2'), await a.reserve('n1', 't', 'u3'), await b.reserve('n2', 't', 'u4')];
      expect(verdicts).toEqual(['ok', 'ok', 'ok', 'tenant']);
      expect(await b.reserve('n2', 't2', 'u4')).toBe('ok');
    });

    it('concurrent reservations never exceed the cap', async () => {
      const [a, b] = await impl.caps(5, 0, 30);
      const all = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).reserve(i % 2 ? 'n1' : 'n2', 't', 'crowd')));
      expect(all.filter((v) => v === 'ok')).toHaveLength(5);
    });

    it('a node that stops refreshing stops counting after the TTL (crash safety)', async () => {
      const [a, b] = await impl.caps(1, 0, 1);
      expect(await a.reserve('dead', 't', 'alice')).toBe('ok');
      expect(await b.reserve('live', 't', 'alice')).toBe('user');
      await until(async () => (await b.reserve('live', 't', 'alice')) === 'ok', 4000, 200);
    });

    it('refresh tells which tenants the store lost; rewrite restores the exact counts; removeNode drops them', async () => {
      const [a, b] = await impl.caps(2, 0, 30);
      await a.reserve('n1', 't', 'alice');
      await a.reserve('n1', 't2', 'bob');
      await a.refresh('n1', []); // the node's first heartbeat
      expect(await a.refresh('n1', ['t', 't2'])).toEqual({ lost: [], all: false });
      await impl.wipe();
      const lost = await a.refresh('n1', ['t', 't2']);
      expect([[...lost.lost].sort(), lost.all]).toEqual([['t', 't2'], true]);
      await a.rewrite('n1', new Map([['t', new Map([['alice', 2]])], ['t2', new Map()]]));
      expect(await a.refresh('n1', ['t'])).toEqual({ lost: [], all: false });
      expect(await b.reserve('n2', 't', 'alice')).toBe('user');
      expect(await b.reserve('n2', 't2', 'bob')).toBe('ok');
      await a.removeNode('n1', ['t', 't2']);
      expect(await b.reserve('n2', 't', 'alice')).toBe('ok');
    });
  });
}

describe('MemoryBus alone', () => {
  it('is not distributed (a single node has no peers)', () => {
    expect(new MemoryBus().distributed).toBe(false);
  });
});
