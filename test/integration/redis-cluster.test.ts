// Gateways on a real Redis Cluster that the test starts itself (three masters with a replica each,
// bench/lib/redis-cluster.ts): presence, publishes over shard channels, revocations reaching open
// sockets on every node, lookups grouped per master, deployment caps, and a master failing over in
// the middle of traffic (CLUSTER FAILOVER, then a killed master).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisClusterServer } from '../../bench/lib/redis-cluster.js';
import { roomKey } from '../../src/rooms/rooms.js';
import { createRedisClient } from '../../src/stores/redis/client.js';
import { RedisRevocationStore } from '../../src/stores/redis/revocation.js';
import type { Cluster } from 'ioredis';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { compare, documented } from '../helpers/redis-doc.js';
import { keyOf } from '../../src/keys/keys.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let cluster: RedisClusterServer;
let a: TestGateway;
let b: TestGateway;
const env = (): Record<string, string> => ({ WSGATE_REDIS_URL: cluster.urls, WSGATE_REDIS_CLUSTER: 'true', WSGATE_REVOCATION_TIMEOUT_MS: '1000' });
const ready = (g: TestGateway): boolean => g.metrics.gauges().revocation_mirror_ready === 1;
const internalErrors = (g: TestGateway): number => [...g.metrics.internalErrors.values()].reduce((x, y) => x + y, 0);

beforeAll(async () => {
  cluster = await startRedisCluster();
  // one key prefix for both: they are two nodes of one deployment
  const prefix = `rc${process.pid}:`;
  [a, b] = await Promise.all([startGateway({ ...env(), WSGATE_KEY_PREFIX: prefix }), startGateway({ ...env(), WSGATE_KEY_PREFIX: prefix })]);
  await until(() => ready(a) && ready(b), 10_000);
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await cluster?.stop();
});

const users = async (c: Client, room: string): Promise<string[]> => {
  const r = await c.request({ type: 'presence', room });
  return r.type === 'ack' ? (r.result as { users: string[] }).users : [];
};

/** One upgrade: 101, or the HTTP status it was refused with (anything else is returned as text). */
async function attempt(url: string, token: string): Promise<number | string> {
  try {
    const { client } = await connect(url, token);
    await client.close();
    return 101;
  } catch (e) {
    const status = (e as { status?: number }).status;
    return typeof status === 'number' ? status : String(e);
  }
}

describe('two gateway nodes on a Redis Cluster', () => {
  it('presence answers for the deployment; publishes cross nodes over shard channels', async () => {
    const onA = (await connect(a.url, hs({ sub: 'ann' }))).client;
    const onB = (await connect(b.url, hs({ sub: 'ben' }), { json: true })).client;
    await onA.request({ type: 'join', rooms: ['team/1'] });
    await onB.request({ type: 'join', rooms: ['team/1'] });
    // each node knows its own members at once, the other's as of its last presence flush
    await until(async () => (await users(onB, 'team/1')).length === 2);
    await until(async () => (await users(onA, 'team/1')).length === 2);
    expect(await users(onA, 'team/1')).toEqual(['ann', 'ben']);
    await onA.request({ type: 'publish', room: 'team/1', data: { n: 1 } });
    expect(await onB.type('message')).toMatchObject({ room: 'team/1', data: { n: 1 }, from: 'ann' });
    await onB.request({ type: 'publish', room: 'team/1', data: 'back' });
    expect((await onA.type('message')).data).toBe('back');
    expect(await onA.none((m) => m.type === 'message', 300)).toBe(true); // its own echo is dropped
    await onA.close();
    await onB.close();
  });

  it('a node receives 0 bytes of the rooms it has no members in; only the member node subscribes the shard channel', async () => {
    const member = (await connect(a.url, hs({ sub: 'solo' }))).client;
    const elsewhere = (await connect(b.url, hs({ sub: 'other' }))).client;
    await member.request({ type: 'join', rooms: ['quiet/1'] });
    await elsewhere.request({ type: 'join', rooms: ['busy/2'] });
    const channel = `${a.config.keyPrefix}room:${roomKey('acme', 'quiet/1')}`;
    const numsub = async (): Promise<number> => {
      let n = 0;
      for (const m of await cluster.masters()) n += Number(((await m.client.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
      return n;
    };
    expect(await numsub()).toBe(1);
    const before = { received: b.metrics.busReceivedBytes, foreign: b.metrics.busForeignBytes };
    const data = 'x'.repeat(1024);
    const publisher = (await connect(a.url, hs({ sub: 'pub' }))).client;
    for (let i = 0; i < 200; i++) await publisher.request({ type: 'publish', room: 'quiet/1', data });
    await until(() => member.inbox.filter((m) => m.type === 'message').length === 200);
    // and a publish to node B's room arrives there: B was listening all along
    await publisher.request({ type: 'publish', room: 'busy/2', data: 'marker' });
    expect((await elsewhere.type('message')).data).toBe('marker');
    const got = b.metrics.busReceivedBytes - before.received;
    console.log(`node B received ${got} bus bytes (one ~${got} B publish to its own room) while 200 x 1 KB went to a room it has no members in`);
    expect(b.metrics.busForeignBytes - before.foreign).toBe(0);
    expect(got).toBeLessThan(400); // only the marker's envelope
    await member.close();
    await until(async () => (await numsub()) === 0); // the last member left: unsubscribed
    await elsewhere.close();
    await publisher.close();
  });

  it('the mirror on every master decides upgrades without a round trip, and refuses a token revoked before it connects', async () => {
    const reads = async (): Promise<number> => (await cluster.calls('get')) + (await cluster.calls('mget')) + (await cluster.calls('exists'));
    const reads0 = await reads();
    const accepted0 = a.metrics.upgradesAccepted + b.metrics.upgradesAccepted;
    const clients = await Promise.all(Array.from({ length: 100 }, async (_, i) => (await connect(i % 2 ? a.url : b.url, hs({ sub: `m${i}` }))).client));
    await cluster.client.set('revoked:cl-before', '1', 'EX', 60);
    await until(() => a.revocations.isRevokedNow('cl-before') === true && b.revocations.isRevokedNow('cl-before') === true);
    expect((await refused(connect(a.url, hs({ jti: 'cl-before' })))).body.code).toBe('TOKEN_REVOKED');
    expect(a.metrics.upgradesAccepted + b.metrics.upgradesAccepted - accepted0).toBe(100);
    expect((await reads()) - reads0).toBe(0);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a plain SET revoked:<jti> closes every socket carrying it on both nodes with 4003 within 1 s', async () => {
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const jti = `cl-${randomUUID()}`;
      const token = hs({ sub: 'carol', jti });
      const sockets = [(await connect(a.url, token)).client, (await connect(b.url, token)).client];
      const t0 = performance.now();
      await cluster.client.set(`revoked:${jti}`, '1', 'EX', 600);
      const closed = await Promise.all(sockets.map(async (c) => ({ ...(await c.closed), at: performance.now() })));
      for (const c of closed) expect({ code: c.code, reason: c.reason }).toEqual({ code: 4003, reason: 'Token revoked' });
      delays.push(Math.max(...closed.map((c) => c.at)) - t0);
      expect((await refused(connect(b.url, token))).body.code).toBe('TOKEN_REVOKED');
    }
    console.log(`revocations on the cluster reached 2 sockets on 2 nodes in ${delays.map((d) => d.toFixed(1)).join(', ')} ms`);
    expect(Math.max(...delays)).toBeLessThan(1000);
  });

  it('deployment caps hold across the nodes (per user and per tenant)', async () => {
    const prefix = `caps${process.pid}:`;
    const capEnv = { ...env(), WSGATE_KEY_PREFIX: prefix, WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER: '2', WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_TENANT: '3' };
    const [c1, c2] = await Promise.all([startGateway(capEnv), startGateway(capEnv)]);
    try {
      const x1 = (await connect(c1.url, hs({ sub: 'dora', tenant_id: 'capped' }))).client;
      const x2 = (await connect(c2.url, hs({ sub: 'dora', tenant_id: 'capped' }))).client;
      const third = await refused(connect(c1.url, hs({ sub: 'dora', tenant_id: 'capped' })));
      expect([third.status, third.body.code]).toEqual([429, 'TOO_MANY_CONNECTIONS']);
      const y = (await connect(c2.url, hs({ sub: 'eve', tenant_id: 'capped' }))).client;
      expect((await refused(connect(c1.url, hs({ sub: 'fay', tenant_id: 'capped' })))).body.code).toBe('TOO_MANY_CONNECTIONS');
      await x1.close();
      await until(async () => (await attempt(c1.url, hs({ sub: 'dora', tenant_id: 'capped' }))) === 101);
      await Promise.all([x2.close(), y.close()]);
    } finally {
      await Promise.all([c1.stop(), c2.stop()]);
    }
  });
});

describe('docs/REDIS.md on a cluster', () => {
  it('names every key and shard channel two gateways (with deployment caps) use, and each named one is in use', async () => {
    const prefix = `doc${process.pid}:`;
    const docEnv = { ...env(), WSGATE_KEY_PREFIX: prefix, WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER: '5' };
    const [g1, g2] = await Promise.all([startGateway(docEnv), startGateway(docEnv)]);
    try {
      const x = (await connect(g1.url, hs({ sub: 'doc-x' }))).client;
      const y = (await connect(g2.url, hs({ sub: 'doc-y' }))).client;
      await x.request({ type: 'join', rooms: ['doc/1'] });
      await y.request({ type: 'join', rooms: ['doc/1'] });
      await until(async () => (await users(x, 'doc/1')).length === 2);
      await until(() => g1.metrics.gauges().registry_pending === 0 && g2.metrics.gauges().registry_pending === 0);
      await g1.hub.flushCaps(); // its refresh writes the node's caps alive key
      await cluster.client.set('revoked:doc-probe', '1', 'EX', 60);
      await cluster.client.set(`revoked-user:${keyOf('acme', 'doc-probe')}`, '1', 'EX', 60);
      const keys: string[] = [];
      for (const m of await cluster.masters()) {
        for (const pattern of [`${prefix}*`, 'revoked:doc-probe', 'revoked-user:*doc-probe']) keys.push(...((await m.client.keys(pattern)) as string[]));
      }
      const k = compare(keys, documented('Keys', prefix));
      expect(k.undocumented).toEqual([]);
      expect(k.unused).toEqual([]);
      const channels: string[] = [];
      for (const m of await cluster.masters()) channels.push(...((await m.client.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[]));
      const c = compare(channels, documented('Channels', prefix));
      expect(c.undocumented).toEqual([]);
      expect(c.unused).toEqual(['__redis__:invalidate']); // invalidations are not shard channels (<p>bus is: the server API's broadcasts)
      await Promise.all([x.close(), y.close()]);
    } finally {
      await Promise.all([g1.stop(), g2.stop()]);
    }
  });
});

describe('revocation lookups on a cluster (lookup mode)', () => {
  it('the lookups of one tick cost one GET pipeline per master: 1000 lookups, 3 round trips', async () => {
    const c = createRedisClient({ url: cluster.urls, cluster: true, name: 'lookups' }) as Cluster;
    try {
      await until(() => c.status === 'ready');
      const store = new RedisRevocationStore(c, 'revoked:', 2000);
      await cluster.client.set('revoked:storm-7', '1', 'EX', 60);
      const gets0 = await cluster.calls('get');
      const mgets0 = await cluster.calls('mget');
      const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) => store.isRevoked(`storm-${i}`)));
      expect(answers.filter(Boolean)).toHaveLength(1);
      expect(answers[7]).toBe(true);
      expect(store.roundTrips).toBe((await cluster.masters()).length);
      expect((await cluster.calls('get')) - gets0).toBe(1000);
      expect((await cluster.calls('mget')) - mgets0).toBe(0);
    } finally {
      c.disconnect();
    }
  });

  it('a connect storm through the gateway: each turn of the event loop costs at most one round trip per master', async () => {
    const g = await startGateway({ ...env(), WSGATE_REVOCATION_MODE: 'lookup' });
    try {
      const N = 600;
      const rt0 = g.revocations.roundTrips;
      const clients = await Promise.all(Array.from({ length: N }, async (_, i) => (await connect(g.url, hs({ sub: `s${i}` }))).client));
      const trips = g.revocations.roundTrips - rt0;
      console.log(`${N} concurrent upgrades on the cluster -> ${trips} round trips (GET pipelines, one per master per turn)`);
      expect(trips).toBeGreaterThan(0);
      expect(trips).toBeLessThanOrEqual(3 * 50);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await g.stop();
    }
  });
});

describe('a master fails over in the middle of traffic', () => {
  /**
   * Traffic while `during` runs: upgrades alternating between the nodes (each answered 101 or 503,
   * nothing else), and publishes from a member on A to a member on B. Returns the upgrade outcomes.
   */
  async function underTraffic(during: () => Promise<void>): Promise<Map<number | string, number>> {
    const outcomes = new Map<number | string, number>();
    let running = true;
    const upgrades = (async () => {
      for (let i = 0; running; i++) {
        const r = await attempt(i % 2 ? a.url : b.url, hs({ sub: `t${i}` }));
        outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
        await new Promise((res) => setTimeout(res, 10));
      }
    })();
    try {
      await during();
    } finally {
      running = false;
      await upgrades;
    }
    return outcomes;
  }

  /** After a failover: the mirror is back on every master, presence and publishes work, a revocation closes sockets on both nodes. */
  async function converged(tag: string): Promise<void> {
    await until(() => ready(a) && ready(b), 20_000);
    const onA = (await connect(a.url, hs({ sub: `${tag}-a` }))).client;
    const onB = (await connect(b.url, hs({ sub: `${tag}-b` }))).client;
    await onA.request({ type: 'join', rooms: [`after/${tag}`] });
    await onB.request({ type: 'join', rooms: [`after/${tag}`] });
    // each node knows its own members at once, the other's as of its last presence flush
    await until(async () => (await users(onA, `after/${tag}`)).length === 2, 15_000);
    await until(async () => (await users(onB, `after/${tag}`)).length === 2, 15_000);
    expect(await users(onB, `after/${tag}`)).toEqual([`${tag}-a`, `${tag}-b`]);
    await onA.request({ type: 'publish', room: `after/${tag}`, data: tag });
    expect((await onB.type('message')).data).toBe(tag);
    // revocations on every master, including the promoted one
    for (let i = 0; i < 6; i++) {
      const jti = `${tag}-${i}-${randomUUID()}`;
      const token = hs({ sub: 'rev', jti });
      const pair = [(await connect(a.url, token)).client, (await connect(b.url, token)).client];
      await cluster.client.set(`revoked:${jti}`, '1', 'EX', 60);
      for (const c of pair) expect((await c.closed).code).toBe(4003);
    }
    await onA.close();
    await onB.close();
  }

  it('CLUSTER FAILOVER on a replica: upgrades succeed or fail closed, presence re-converges, nothing crashes', async () => {
    const ann = (await connect(a.url, hs({ sub: 'f-ann' }))).client;
    const ben = (await connect(b.url, hs({ sub: 'f-ben' }))).client;
    await ann.request({ type: 'join', rooms: ['fo/1'] });
    await ben.request({ type: 'join', rooms: ['fo/1'] });
    await until(async () => (await users(ann, 'fo/1')).length === 2);
    const syncs = [a, b].map((g) => (g.revocations as unknown as { syncs: number }).syncs);
    const outcomes = await underTraffic(async () => {
      await new Promise((r) => setTimeout(r, 300));
      const promoted = await cluster.failover();
      console.log(`CLUSTER FAILOVER: ${promoted.port} promoted`);
      await new Promise((r) => setTimeout(r, 1500));
    });
    console.log('upgrade outcomes during CLUSTER FAILOVER:', Object.fromEntries(outcomes));
    expect([...outcomes.keys()].every((k) => k === 101 || k === 503)).toBe(true);
    expect(outcomes.get(101)).toBeGreaterThan(0);
    await converged('fo');
    // the new master got a shard of its own, synced
    for (const [i, g] of [a, b].entries()) expect((g.revocations as unknown as { syncs: number }).syncs).toBeGreaterThan(syncs[i]!);
    expect(await users(ann, 'fo/1')).toEqual(['f-ann', 'f-ben']);
    await ann.request({ type: 'publish', room: 'fo/1', data: 'still here' });
    expect((await ben.type('message')).data).toBe('still here');
    expect(internalErrors(a) + internalErrors(b)).toBe(0);
    await ann.close();
    await ben.close();
  });

  it('a killed master (SIGKILL): its replica takes over; meanwhile upgrades succeed or fail closed; afterwards everything works', async () => {
    const ann = (await connect(a.url, hs({ sub: 'k-ann' }))).client;
    const ben = (await connect(b.url, hs({ sub: 'k-ben' }))).client;
    await ann.request({ type: 'join', rooms: ['kill/1'] });
    await ben.request({ type: 'join', rooms: ['kill/1'] });
    await until(async () => (await users(ann, 'kill/1')).length === 2);
    const outcomes = await underTraffic(async () => {
      await new Promise((r) => setTimeout(r, 300));
      const victim = (await cluster.masters())[0]!;
      await victim.kill();
      // the cluster notices (node timeout 2 s) and promotes the replica
      await cluster.settled(30_000);
      console.log(`killed master ${victim.port}; the cluster settled`);
      await new Promise((r) => setTimeout(r, 1000));
    });
    console.log('upgrade outcomes around a killed master:', Object.fromEntries(outcomes));
    expect([...outcomes.keys()].every((k) => k === 101 || k === 503)).toBe(true);
    expect(outcomes.get(101)).toBeGreaterThan(0);
    await converged('kill');
    await until(async () => (await users(ann, 'kill/1')).join() === 'k-ann,k-ben', 15_000);
    expect(internalErrors(a) + internalErrors(b)).toBe(0);
    await ann.close();
    await ben.close();
  });
});
