// One contract per store port, run against the memory implementation, the in-host store (two
// workers' links to one supervisor's HostServer over a real Unix socket) and Redis (a real
// redis-server). Each test gets its own key prefix.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus, MemoryBusHub } from '../../src/stores/memory/bus.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import { MemoryRegistryStore } from '../../src/stores/memory/registry.js';
import { MemoryRevocationStore } from '../../src/stores/memory/revocation.js';
import { HostServer } from '../../src/stores/host/server.js';
import { connectHost, type HostStores } from '../../src/stores/host/stores.js';
import type { Bus, ConnectionEntry, PresenceStore, RegistryStore, RevocationStore } from '../../src/stores/ports.js';
import { RedisBus } from '../../src/stores/redis/bus.js';
import { createRedis } from '../../src/stores/redis/client.js';
import { RedisPresenceStore } from '../../src/stores/redis/presence.js';
import { RedisRegistryStore } from '../../src/stores/redis/registry.js';
import { RedisRevocationStore } from '../../src/stores/redis/revocation.js';
import { RedisRevocationMirror } from '../../src/stores/redis/revocation-mirror.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { keyOf } from '../../src/keys/keys.js';

let redis: TestRedis;
const clients: Redis[] = [];
const hosts: HostServer[] = [];
const links: HostStores[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const l of links) l.link.close();
  for (const h of hosts) await h.close();
  await redis.stop();
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

async function client(): Promise<Redis> {
  const c = createRedis({ url: redis.url, name: 'contract' });
  clients.push(c);
  if (c.status !== 'ready') await new Promise((r) => c.once('ready', r));
  return c;
}


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
  bus: () => Promise<[Bus, Bus]>;
  /** The backing store forgets everything (a Redis restarted empty). */
  wipe: () => Promise<void>;
}

const memoryBacking: { wipe?: () => void } = {};
const mirrors = new Map<RedisRevocationMirror, { prefix: string; userPrefix: string; cmd: Redis }>();
const userPrefixes = new Map<RevocationStore, string>();
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
    wipe: async () => hostBacking.wipe?.(),
  },
  {
    name: 'redis',
    pushes: false,
    revocation: async () => {
      const userPrefix = `revoked-user-${randomUUID()}:`;
      const store = new RedisRevocationStore(await client(), `revoked-${randomUUID()}:`, 1000, userPrefix);
      userPrefixes.set(store, userPrefix);
      return store;
    },
    revokeUserFromOutside: async (store, tenant, sub, value, ttlSec) => void (await redis.client.set(`${userPrefixes.get(store)}${keyOf(tenant, sub)}`, value, 'EX', ttlSec)),
    registry: async (ttl) => {
      const p = `c-${randomUUID()}:`;
      return [new RedisRegistryStore(await client(), p, ttl), new RedisRegistryStore(await client(), p, ttl)];
    },
    presence: async (ttl) => {
      const p = `c-${randomUUID()}:`;
      return [new RedisPresenceStore(await client(), p, ttl), new RedisPresenceStore(await client(), p, ttl)];
    },
    bus: async () => {
      const ch = `bus-${randomUUID()}`;
      const sub = (): Redis => {
        const c = createRedis({ url: redis.url, name: 'sub', offlineQueue: true });
        clients.push(c);
        return c;
      };
      return [new RedisBus(await client(), sub(), ch), new RedisBus(await client(), sub(), ch)];
    },
    wipe: async () => void (await redis.client.flushall()),
  },
  {
    // The Redis revocation mirror (WSGATE_REVOCATION_MODE=mirror); the other ports are the Redis ones.
    name: 'redis-mirror',
    pushes: true,
    revocation: async () => {
      const prefix = `revoked-${randomUUID()}:`;
      const userPrefix = `revoked-user-${randomUUID()}:`;
      const tracking = createRedis({ url: redis.url, name: 'mirror', autoResubscribe: false });
      clients.push(tracking);
      const cmd = await client();
      const m = new RedisRevocationMirror(cmd, tracking, prefix, 1000, Date.now, () => undefined, userPrefix);
      mirrors.set(m, { prefix, userPrefix, cmd });
      await until(() => m.isReady);
      return m;
    },
    revokeFromOutside: async (store, jti, ttlSec) => void (await redis.client.set(`${mirrors.get(store as RedisRevocationMirror)!.prefix}${jti}`, '1', 'EX', ttlSec)),
    revokeUserFromOutside: async (store, tenant, sub, value, ttlSec) =>
      void (await redis.client.set(`${mirrors.get(store as RedisRevocationMirror)!.userPrefix}${keyOf(tenant, sub)}`, value, 'EX', ttlSec)),
    registry: async (ttl) => impls.find((i) => i.name === 'redis')!.registry(ttl),
    presence: async (ttl) => impls.find((i) => i.name === 'redis')!.presence(ttl),
    bus: async () => impls.find((i) => i.name === 'redis')!.bus(),
    wipe: async () => void (await redis.client.flushall()),
  },
];

const entry = (connId: string, nodeId: string, userId = 'u'): ConnectionEntry => ({ connId, nodeId, userId, tenantId: 't', since: 1000, exp: 2000 });
const batch = (added: Record<string, string[]> = {}, removed: Record<string, string[]> = {}, refresh: string[] = [], vacated: string[] = []) => ({
  added: new Map(Object.entries(added)),
  removed: new Map(Object.entries(removed)),
  vacated,
  refresh,
});

for (const impl of impls) {
  describe(`RevocationStore (${impl.name})`, () => {
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
      expect(s.roundTrips - rt).toBeLessThanOrEqual(1);
    });
  });

  describe(`RegistryStore (${impl.name})`, () => {
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

  describe(`PresenceStore (${impl.name})`, () => {
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

  describe(`Bus (${impl.name})`, () => {
    it('delivers one node\'s payloads to the others', async () => {
      const [a, b] = await impl.bus();
      expect(a.distributed).toBe(true);
      const got: string[] = [];
      b.onMessage((p) => got.push(p.toString()));
      // a subscriber may need a moment to subscribe: probe until one arrives, then count
      await until(async () => {
        await a.publish(Buffer.from('probe'));
        return got.includes('probe');
      });
      got.length = 0;
      await a.publish(Buffer.from('hello'));
      await until(() => got.includes('hello'));
      expect(got.filter((x) => x !== 'probe')).toEqual(['hello']);
      await a.close();
      await b.close();
    });
  });
}

describe('RedisRevocationMirror after a resync', () => {
  it('reports the revocations written while it could not hear them (tokens and users)', async () => {
    const s = (await impls.find((i) => i.name === 'redis-mirror')!.revocation()) as RedisRevocationMirror;
    const { prefix, userPrefix, cmd } = mirrors.get(s)!;
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
    await until(() => told.includes('while-away') && told.includes('acme/away/1700000000'));
    expect(s.isRevokedNow('while-away')).toBe(true);
    expect(s.userRevokedBeforeNow('acme', 'away')).toBe(1_700_000_000);
  });
});

describe('MemoryBus alone', () => {
  it('is not distributed (a single node has no peers)', () => {
    expect(new MemoryBus().distributed).toBe(false);
  });
});
