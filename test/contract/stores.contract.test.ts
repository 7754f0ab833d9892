// One contract per store port, run against the memory implementation, the in-host store (two
// workers' links to one supervisor's HostServer over a real Unix socket), a single Redis (a real
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
import { HostServer } from '../../src/stores/host/server.js';
import { connectHost, type HostStores } from '../../src/stores/host/stores.js';
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
import { keyOf } from '../../src/keys/keys.js';

let redis: TestRedis;
let cluster: RedisClusterServer;
const clients: RedisClient[] = [];
const closers: Array<() => void> = [];
const hosts: HostServer[] = [];
const links: HostStores[] = [];
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  for (const c of closers) c();
  for (const c of clients) c.disconnect();
  for (const l of links) l.link.close();
  for (const h of hosts) await h.close();
  await Promise.all([redis.stop(), cluster.stop()]);
});

/** A supervisor's in-host store and two workers linked to it (a fresh one per call: the tests are independent). */
async function hostPair(ttlSec = 30): Promise<[HostStores, HostStores, HostServer]> {
  const server = new HostServer({ registryTtlSec: ttlSec, presenceTtlSec: ttlSec, caps: { maxConnections: 0, maxConnectionsPerUser: 0, maxConnectionsPerTenant: 0 } });
  hosts.push(server);
  const path = await server.listen();
  const a = await connectHost(path, `w-${randomUUID()}`);
  const b = await connectHost(path, `w-${randomUUID()}`);
  links.push(a, b);
  hostBacking.wipe = () => server.wipe();
  return [a, b, server];
}
const hostBacking: { wipe?: () => void } = {};
const hostOf = new Map<RevocationStore, HostStores>();

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
  /** Writes a user revocation's key with a plain SET (any value), where the store has a backing server. */
  revokeUserFromOutside?: (store: RevocationStore, tenant: string, sub: string, value: string, ttlSec: number) => Promise<void>;
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
  only?: ReadonlyArray<'revocation' | 'registry' | 'presence' | 'bus' | 'caps'>;
}

const memoryBacking: { wipe?: () => void } = {};
const userPrefixes = new Map<RevocationStore, string>();
const prefixes = new Map<RevocationStore, string>();

/** The Redis implementations of every port on one client factory (a single Redis, or a cluster). */
function redisImpl(name: string, connect: () => Promise<RedisClient>, subscriber: (sharded: boolean) => RedisClient, wipe: () => Promise<void>, outside: () => RedisClient, channels: BusChannels = 'room'): Impl {
  return {
    name,
    pushes: false,
    revocation: async () => {
      const userPrefix = `revoked-user-${randomUUID()}:`;
      const store = new RedisRevocationStore(await connect(), `revoked-${randomUUID()}:`, 1000, userPrefix);
      userPrefixes.set(store, userPrefix);
      return store;
    },
    revokeUserFromOutside: async (store, tenant, sub, value, ttlSec) => void (await outside().set(`${userPrefixes.get(store)}${keyOf(tenant, sub)}`, value, 'EX', ttlSec)),
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

const singleRedis = redisImpl('redis', client, singleSub, wipeRedis, () => redis.client);
const onCluster = redisImpl('redis-cluster', clusterClient, clusterSub, wipeCluster, () => cluster.client);

const impls: Impl[] = [
  {
    name: 'memory',
    pushes: true,
    revocation: async () => new MemoryRevocationStore(),
    registry: async (ttl) => {
      const s = new MemoryRegistryStore(ttl);
      memoryBacking.wipe = () => s.clear();
      return [s, s];
    },
    presence: async (ttl) => {
      const s = new MemoryPresenceStore(ttl);
      memoryBacking.wipe = () => s.clear();
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
  {
    // The workers of one host on the embedded store: each worker's stores talk to the supervisor's
    // HostServer; "outside" is another worker of the host revoking.
    name: 'host',
    pushes: true,
    revocation: async () => {
      const [a, b] = await hostPair();
      hostOf.set(a.revocations, b);
      return a.revocations;
    },
    revokeFromOutside: async (store, jti, ttlSec) => hostOf.get(store)!.revocations.revoke(jti, ttlSec),
    registry: async (ttl) => {
      const [a, b] = await hostPair(ttl);
      return [a.registry, b.registry];
    },
    presence: async (ttl) => {
      const [a, b] = await hostPair(ttl);
      return [a.presence, b.presence];
    },
    bus: async () => {
      const [a, b] = await hostPair();
      return [a.bus, b.bus];
    },
    // the host relays every payload to every worker (FanOut drops the rooms a worker has no member in)
    perRoom: false,
    wipe: async () => hostBacking.wipe?.(),
    // the deployment-wide caps are Redis's (the host counts its own caps: test/integration/workers.test.ts)
    only: ['revocation', 'registry', 'presence', 'bus'],
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
      const userPrefix = `revoked-user-${randomUUID()}:`;
      const tracking = createRedis({ url: redis.url, name: 'mirror', autoResubscribe: false });
      clients.push(tracking);
      const m = new RedisRevocationMirror(await client(), tracking, prefix, 1000, Date.now, () => undefined, userPrefix);
      closers.push(() => m.close());
      prefixes.set(m, prefix);
      userPrefixes.set(m, userPrefix);
      await until(() => m.isReady);
      return m;
    },
    revokeFromOutside: async (store, jti, ttlSec) => void (await redis.client.set(`${prefixes.get(store)}${jti}`, '1', 'EX', ttlSec)),
    revokeUserFromOutside: async (store, tenant, sub, value, ttlSec) => void (await redis.client.set(`${userPrefixes.get(store)}${keyOf(tenant, sub)}`, value, 'EX', ttlSec)),
  },
  {
    // The single-channel bus (WSGATE_BUS_CHANNELS=single): every node receives every room.
    ...redisImpl('redis-single-channel', client, singleSub, wipeRedis, () => redis.client, 'single'),
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
      const userPrefix = `revoked-user-${randomUUID()}:`;
      const m = new ClusterRevocationMirror(await clusterClient(), cluster.urls, 'contract', prefix, 1000, () => undefined, userPrefix);
      closers.push(() => m.close());
      prefixes.set(m, prefix);
      userPrefixes.set(m, userPrefix);
      await until(() => m.isReady);
      return m;
    },
    revokeFromOutside: async (store, jti, ttlSec) => void (await cluster.client.set(`${prefixes.get(store)}${jti}`, '1', 'EX', ttlSec)),
    revokeUserFromOutside: async (store, tenant, sub, value, ttlSec) => void (await cluster.client.set(`${userPrefixes.get(store)}${keyOf(tenant, sub)}`, value, 'EX', ttlSec)),
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

    it('user revocations: 0 until revoked, then `before` for the TTL, for that tenant and sub only', async () => {
      const s = await impl.revocation();
      expect(await s.userRevokedBefore('acme', 'alice')).toBe(0);
      await s.revokeUser('acme', 'alice', 1_700_000_000, 1);
      expect(await s.userRevokedBefore('acme', 'alice')).toBe(1_700_000_000);
      // other users, other tenants, and pairs whose concatenation is the same are not revoked
      for (const [t, u] of [['acme', 'bob'], ['other', 'alice'], ['acmea', 'lice'], ['acm', 'ealice']] as const) expect(await s.userRevokedBefore(t, u), `${t}/${u}`).toBe(0);
      // a newer revocation replaces the older
      await s.revokeUser('acme', 'alice', 1_700_000_100, 1);
      expect(await s.userRevokedBefore('acme', 'alice')).toBe(1_700_000_100);
      await until(async () => (await s.userRevokedBefore('acme', 'alice')) === 0, 3000);
    });

    it('userRevokedBeforeNow answers at once where the store can (never a wrong answer)', async () => {
      const s = await impl.revocation();
      await s.revokeUser('acme', 'now-1', 1234, 60);
      const a = s.userRevokedBeforeNow('acme', 'now-1');
      const b = s.userRevokedBeforeNow('acme', 'now-2');
      expect(a === 1234 || a === undefined).toBe(true);
      expect(b === 0 || b === undefined).toBe(true);
      if (impl.pushes) expect([a, b]).toEqual([1234, 0]);
    });

    it(impl.pushes ? 'learns of user revocations written by others and tells onUserRevoked' : 'does not push user revocations (lookup mode)', async () => {
      const s = await impl.revocation();
      const told: string[] = [];
      s.onUserRevoked((tenant, sub, before) => told.push(`${tenant}/${sub}/${before}`));
      if (impl.revokeUserFromOutside) await impl.revokeUserFromOutside(s, 'acme', 'outside', '1700000000', 60);
      else await s.revokeUser('acme', 'outside', 1_700_000_000, 60);
      if (!impl.pushes) {
        expect(await s.userRevokedBefore('acme', 'outside')).toBe(1_700_000_000);
        expect(told).toEqual([]);
        return;
      }
      await until(() => told.includes('acme/outside/1700000000'));
      expect(s.userRevokedBeforeNow('acme', 'outside')).toBe(1_700_000_000);
    });

    if (impl.revokeUserFromOutside) {
      it('a user revocation key whose value is not an integer revokes every token of the user', async () => {
        const s = await impl.revocation();
        await impl.revokeUserFromOutside!(s, 'acme', 'garbled', 'yesterday', 60);
        await until(async () => (await s.userRevokedBefore('acme', 'garbled')) !== 0);
        expect(await s.userRevokedBefore('acme', 'garbled')).toBe(Infinity);
      });
    }

    it('a token check and a user check asked together share a round trip', async () => {
      const s = await impl.revocation();
      await s.revoke('both-1', 60);
      await s.revokeUser('acme', 'both', 99, 60);
      const rt = s.roundTrips;
      expect(await Promise.all([s.isRevoked('both-1'), s.userRevokedBefore('acme', 'both'), s.isRevoked('both-2'), s.userRevokedBefore('acme', 'neither')])).toEqual([true, 99, false, 0]);
      // one MGET on a single Redis; on a cluster one GET pipeline per master holding the keys (3 here)
      expect(s.roundTrips - rt).toBeLessThanOrEqual(impl.name.startsWith('redis-cluster') ? 3 : 1);
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

    it('liveNodes lists the nodes with a heartbeat within the TTL, with or without connections', async () => {
      const [a, b] = await impl.registry(1);
      await a.apply('empty', { upserts: [], removals: [] });
      await b.apply('busy', { upserts: [entry('c1', 'busy')], removals: [] });
      expect((await a.liveNodes()).sort()).toEqual(['busy', 'empty']);
      await b.removeNode('busy');
      expect(await b.liveNodes()).toEqual(['empty']);
      await until(async () => (await a.liveNodes()).length === 0, 4000, 200);
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

    it('a batch of thousands of rooms applies whole (Redis: split into several MULTIs)', async () => {
      const [a] = await impl.presence(30);
      const added: Record<string, string[]> = {};
      for (let i = 0; i < 3000; i++) added[`big${i}`] = [`u${i}`];
      await a.apply('n1', batch(added));
      expect(await a.members('big0')).toEqual(['u0']);
      expect(await a.members('big2999')).toEqual(['u2999']);
      expect((await a.apply('n1', batch())).lost).toBe(false);
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

    it('transitions, where the store reports them, count a user once over every node', async () => {
      const [a, b] = await impl.presence(30);
      const t1 = await a.apply('n1', batch({ r1: ['alice'] }));
      if (t1.transitions === undefined) {
        // Redis: the writer announces its own node's transitions (docs/PROTOCOL.md)
        expect(impl.name.startsWith('redis')).toBe(true);
        return;
      }
      expect(t1.transitions).toEqual([{ room: 'r1', joined: ['alice'], left: [] }]);
      // alice on a second node: not a join; bob is
      expect((await b.apply('n2', batch({ r1: ['alice', 'bob'] }))).transitions).toEqual([{ room: 'r1', joined: ['bob'], left: [] }]);
      // alice leaves one node: still present; then the other: left
      expect((await a.apply('n1', batch({}, { r1: ['alice'] }))).transitions).toEqual([]);
      expect((await b.apply('n2', batch({}, { r1: ['alice'] }))).transitions).toEqual([{ room: 'r1', joined: [], left: ['alice'] }]);
      // a full rewrite is compared with what the node had
      expect((await b.apply('n2', { ...batch(), full: new Map([['r2', ['bob']]]) })).transitions).toEqual(
        expect.arrayContaining([{ room: 'r2', joined: ['bob'], left: [] }, { room: 'r1', joined: [], left: ['bob'] }]),
      );
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

    it('1000 publishes made in one turn (sent together) all arrive, in the order they were made', async () => {
      const [a, b] = await impl.bus();
      const got: string[] = [];
      b.onMessage((p) => got.push(p.toString()));
      b.watch(room(1));
      await b.ready([room(1)]);
      const sent = Array.from({ length: 1000 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((m) => a.publish(room(1), Buffer.from(m))));
      await until(() => got.length === 1000);
      expect(got).toEqual(sent);
      await a.close();
      await b.close();
    });

    it('broadcast reaches every other node whatever it watches (the server API\'s commands and answers)', async () => {
      const [a, b] = await impl.bus();
      const got: string[] = [];
      b.onMessage((p) => got.push(p.toString()));
      // the deployment's channel is subscribed from the start: probe until it is confirmed
      await until(async () => {
        await a.broadcast(Buffer.from('probe'));
        return got.includes('probe');
      });
      got.length = 0;
      await a.broadcast(Buffer.from('to-all'));
      await until(() => got.includes('to-all'));
      expect(got.filter((x) => x !== 'probe')).toEqual(['to-all']);
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

describe('RedisRevocationMirror after a resync', () => {
  it('reports every revocation it holds after the sync: the ones written while it could not hear them, and the ones it knew (fail-open may have let them in meanwhile)', async () => {
    const s = (await impls.find((i) => i.name === 'redis-mirror')!.revocation()) as RedisRevocationMirror;
    const prefix = prefixes.get(s)!;
    const userPrefix = userPrefixes.get(s)!;
    const cmd = (s as unknown as { redis: Redis }).redis;
    await redis.client.set(`${prefix}known-before`, '1', 'EX', 60);
    await until(() => s.isRevokedNow('known-before') === true);
    const told: string[] = [];
    s.onRevoked((jti) => told.push(jti));
    s.onUserRevoked((tenant, sub, before) => told.push(`${tenant}/${sub}/${before}`));
    // no invalidations from now on: only the next sync can learn of these
    await cmd.call('CLIENT', 'TRACKING', 'OFF');
    await redis.client.set(`${prefix}while-away`, '1', 'EX', 60);
    await redis.client.set(`${userPrefix}${keyOf('acme', 'away')}`, '1700000000', 'EX', 60);
    expect(s.isRevokedNow('while-away')).toBe(false);
    const syncs = s.syncs;
    // the mirror's subscriber connection drops: it reconnects and the mirror syncs again
    await redis.client.call('CLIENT', 'KILL', 'ID', String((s as unknown as { subId: number }).subId));
    await until(() => s.syncs > syncs && s.isReady);
    await until(() => told.includes('while-away') && told.includes('acme/away/1700000000') && told.includes('known-before'));
    expect(s.isRevokedNow('while-away')).toBe(true);
    expect(s.userRevokedBeforeNow('acme', 'away')).toBe(1_700_000_000);
  });
});

describe('MemoryBus alone', () => {
  it('is not distributed (a single node has no peers)', () => {
    expect(new MemoryBus().distributed).toBe(false);
  });
});
