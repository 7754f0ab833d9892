// A Redis that stops answering (SIGSTOP: the connection stays, nothing comes back): the buffers of
// presence changes stay bounded under churn of ever-new rooms, presence queries answer
// UNAVAILABLE within the lookup timeout, and once Redis answers again the node's presence is
// rewritten exactly (rooms left during the outage are gone, rooms joined are there).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';
import { keyOf } from '../../src/keys/keys.js';
import { roomKey } from '../../src/rooms/rooms.js';

let redis: TestRedis;
let gw: TestGateway;
const MAX_PENDING = 50;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({
    WSGATE_REDIS_URL: redis.url,
    WSGATE_PRESENCE_MAX_PENDING: String(MAX_PENDING),
    WSGATE_REGISTRY_MAX_PENDING: '20',
    WSGATE_REVOCATION_TIMEOUT_MS: '300',
    WSGATE_MAX_ROOMS: '2000',
    WSGATE_RATE_LIMIT: '0',
    // connections keep coming during the outage (the registry's buffer is under test too)
    WSGATE_REVOCATION_FAIL_OPEN: 'true',
  });
});
afterAll(async () => {
  process.kill(redis.pid()!, 'SIGCONT');
  await gw.stop();
  await redis.stop();
});

const stall = (): void => void process.kill(redis.pid()!, 'SIGSTOP');
const resume = (): void => void process.kill(redis.pid()!, 'SIGCONT');
// the room's per-node set, tagged with the room (docs/REDIS.md)
const members = (room: string): Promise<string[]> => redis.client.sunion(...[gw.config.nodeId].map((n) => `${gw.config.keyPrefix}presence:room:{${keyOf(roomKey('acme', room))}}:${n}`)).then((u) => u.sort());
const gauge = (name: string): number => gw.metrics.gauges()[name] ?? NaN;

describe('presence queries are bounded', () => {
  it('a flood of presence requests on a big room costs Redis at most one read per room per 250 ms, and the node keeps serving', async () => {
    const members = await Promise.all(Array.from({ length: 200 }, async (_, i) => (await connect(gw.url, hs({ sub: `m${i}` }))).client));
    for (const m of members) await m.request({ type: 'join', rooms: ['flooded'] });
    await gw.hub.flushPresence();
    const flooders = await Promise.all(Array.from({ length: 4 }, async (_, i) => (await connect(gw.url, hs({ sub: `f${i}` }))).client));
    const sunion0 = await redis.calls('sunion');
    const t0 = Date.now();
    let answered = 0;
    let limited = 0;
    // 4 sockets, each with 40 requests in flight at once, 5 rounds
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(flooders.flatMap((f) => Array.from({ length: 40 }, () => f.request({ type: 'presence', room: 'flooded' }))));
      for (const r of replies) {
        if (r.type === 'ack') {
          answered++;
          expect((r.result as { users: string[] }).users).toHaveLength(200);
        } else if (r.code === 'RATE_LIMITED') limited++;
        else throw new Error(`unexpected reply ${JSON.stringify(r)}`);
      }
    }
    const reads = (await redis.calls('sunion')) - sunion0;
    const elapsed = Date.now() - t0;
    expect(answered).toBeGreaterThan(0);
    expect(limited).toBeGreaterThan(0); // at most 4 waiting per socket
    expect(reads).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2);
    const { client } = await connect(gw.url, hs({ sub: 'newcomer' }));
    await Promise.all([client.close(), ...members.map((m) => m.close()), ...flooders.map((f) => f.close())]);
  });

  it('one user\'s sockets together have at most WSGATE_USER_PRESENCE_WAITING (16) requests waiting: another user still gets a read slot (red team N4)', async () => {
    const hog = await Promise.all(Array.from({ length: 8 }, async () => (await connect(gw.url, hs({ sub: 'hog' }))).client));
    const fair = (await connect(gw.url, hs({ sub: 'fair' }))).client;
    stall();
    try {
      // 8 sockets x 4 requests (the per-socket share), each on a room of its own: 32 asked, 16 may wait
      const asked = hog.flatMap((h, i) => Array.from({ length: 4 }, (_, j) => h.request({ type: 'presence', room: `hog/${i}/${j}` })));
      const fairReply = fair.request({ type: 'presence', room: 'fair/1' });
      const replies = await Promise.all(asked);
      const codes = replies.map((r) => (r.type === 'ack' ? 'ack' : r.code));
      expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(16);
      expect(codes.filter((c) => c === 'UNAVAILABLE')).toHaveLength(16); // waited, then the lookup timeout
      expect((await fairReply).code).toBe('UNAVAILABLE'); // it had a slot: not refused for the hog's sake
    } finally {
      resume();
    }
    await Promise.all([fair.close(), ...hog.map((h) => h.close())]);
  });

  it('this node\'s own joins and leaves show at once, before any flush', async () => {
    const a = (await connect(gw.url, hs({ sub: 'early' }))).client;
    await a.request({ type: 'join', rooms: ['fresh'] });
    expect((await a.request({ type: 'presence', room: 'fresh' })).result).toEqual({ room: 'fresh', users: ['early'] });
    const b = (await connect(gw.url, hs({ sub: 'second' }))).client;
    await b.request({ type: 'join', rooms: ['fresh'] });
    await b.request({ type: 'leave', rooms: ['fresh'] });
    expect((await a.request({ type: 'presence', room: 'fresh' })).result).toEqual({ room: 'fresh', users: ['early'] });
    await Promise.all([a.close(), b.close()]);
  });
});

describe('Redis stalled', () => {
  it('a presence query answers UNAVAILABLE within the lookup timeout, not when Redis comes back', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'asker' }));
    await client.request({ type: 'join', rooms: ['q/1'] });
    await gw.hub.flushPresence(); // the join is in Redis before it stalls
    await gw.hub.flushPresence();
    stall();
    try {
      // had the query waited for Redis, it would be an ack with the members after resume()
      expect(await client.request({ type: 'presence', room: 'q/1' })).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
    } finally {
      resume();
    }
    expect(await client.request({ type: 'presence', room: 'q/1' })).toMatchObject({ type: 'ack', result: { users: ['asker'] } });
    await client.close();
  });

  it('churn of ever-new rooms keeps the buffers bounded; after recovery the node\'s presence is exact', async () => {
    const a = (await connect(gw.url, hs({ sub: 'ann' }))).client;
    const b = (await connect(gw.url, hs({ sub: 'bob' }))).client;
    await a.request({ type: 'join', rooms: ['stay/1', 'gone/1'] });
    await gw.hub.flushPresence();
    await gw.hub.flushPresence();
    expect(await members('gone/1')).toEqual(['ann']);

    stall();
    let maxPending = 0;
    let maxRegistry = 0;
    const sample = setInterval(() => {
      maxPending = Math.max(maxPending, gauge('presence_pending_rooms'));
      maxRegistry = Math.max(maxRegistry, gauge('registry_pending'));
    }, 5);
    const churners: Client[] = [];
    try {
      await a.request({ type: 'leave', rooms: ['gone/1'] });
      // join/leave of new names (nets to nothing), and joins that stay: far more rooms than the cap
      for (let i = 0; i < 300; i++) {
        await b.request({ type: 'join', rooms: [`churn/${i}`] });
        await b.request({ type: 'leave', rooms: [`churn/${i}`] });
      }
      const kept = Array.from({ length: 400 }, (_, i) => `kept/${i}`);
      for (let i = 0; i < kept.length; i += 100) await b.request({ type: 'join', rooms: kept.slice(i, i + 100) });
      // connection churn too: the registry buffer is bounded the same way
      const opened = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await connect(gw.url, hs({ sub: `c${i}` }))).client));
      for (const [i, c] of opened.entries()) {
        if (i % 2 === 0) await c.close();
        else churners.push(c);
      }
      maxPending = Math.max(maxPending, gauge('presence_pending_rooms'));
      expect(maxPending).toBeLessThanOrEqual(MAX_PENDING);
      expect(maxRegistry).toBeLessThanOrEqual(20 + 1);
      expect(await gw.metrics.render()).toMatch(/wsgate_presence_overflows_total [1-9]/);
      expect(await gw.metrics.render()).toMatch(/wsgate_registry_overflows_total [1-9]/);
    } finally {
      clearInterval(sample);
      resume();
    }
    // the full rewrite: exactly the node's state, including the room ann left while Redis was away
    await until(async () => (await members('kept/399')).join() === 'bob', 8000);
    expect(await members('stay/1')).toEqual(['ann']);
    expect(await members('gone/1')).toEqual([]);
    expect(await members('churn/5')).toEqual([]);
    expect(await members('kept/0')).toEqual(['bob']);
    expect((await a.request({ type: 'presence', room: 'gone/1' })).result).toEqual({ room: 'gone/1', users: [] });
    await until(async () => (await gw.registryStore.list()).filter((e) => e.nodeId === gw.config.nodeId).length === gw.hub.size, 8000);
    await Promise.all([a.close(), b.close(), ...churners.map((c) => c.close())]);
  });
});
