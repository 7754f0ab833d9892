// The cross-node bus on a single Redis, seen from outside the gateway: node B reaches Redis through
// a TCP proxy that counts the bytes Redis sends it. With per-room channels (the default) B receives
// nothing of a room it has no members in; with the single channel it receives every publish.
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { Redis } from 'ioredis';
import { RedisBus } from '../../src/stores/redis/bus.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

/** A TCP proxy to Redis that counts the bytes Redis sends through it. */
async function countingProxy(port: number): Promise<{ url: string; bytes: () => number; close: () => Promise<void> }> {
  let down = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      down += d.length;
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    bytes: () => down,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function twoNodes(channels: 'room' | 'single', run: (a: TestGateway, b: TestGateway, bytesToB: () => number) => Promise<void>): Promise<void> {
  const proxy = await countingProxy(redis.port);
  const prefix = `bus-${channels}-${process.pid}:`;
  const common = { WSGATE_KEY_PREFIX: prefix, WSGATE_BUS_CHANNELS: channels };
  const a = await startGateway({ ...common, WSGATE_REDIS_URL: redis.url });
  const b = await startGateway({ ...common, WSGATE_REDIS_URL: proxy.url });
  try {
    await run(a, b, proxy.bytes);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await proxy.close();
  }
}

/** 200 publishes of 1 KB to a room with a member on A only; then one to B's room. Returns the bytes Redis sent B meanwhile. */
async function burst(a: TestGateway, b: TestGateway, bytesToB: () => number): Promise<{ bytes: number; foreign: number }> {
  const member = (await connect(a.url, hs({ sub: 'member' }))).client;
  const watcher = (await connect(b.url, hs({ sub: 'watcher' }))).client;
  await member.request({ type: 'join', rooms: ['a-only'] });
  await watcher.request({ type: 'join', rooms: ['b-room'] });
  const publisher = (await connect(a.url, hs({ sub: 'publisher' }))).client;
  const bytes0 = bytesToB();
  const foreign0 = b.metrics.busForeignBytes;
  const data = 'x'.repeat(1024);
  for (let i = 0; i < 200; i++) await publisher.request({ type: 'publish', room: 'a-only', data });
  await until(() => member.inbox.filter((m) => m.type === 'message').length === 200);
  await publisher.request({ type: 'publish', room: 'b-room', data: 'marker' });
  expect((await watcher.type('message')).data).toBe('marker');
  const out = { bytes: bytesToB() - bytes0, foreign: b.metrics.busForeignBytes - foreign0 };
  await Promise.all([member.close(), watcher.close(), publisher.close()]);
  return out;
}

describe('per-room bus channels (WSGATE_BUS_CHANNELS=room, the default)', () => {
  it('a node with no member in a room receives 0 bytes of its traffic; the single channel delivers it all', async () => {
    let room = { bytes: 0, foreign: 0 };
    let single = { bytes: 0, foreign: 0 };
    await twoNodes('room', async (a, b, bytes) => {
      room = await burst(a, b, bytes);
    });
    await twoNodes('single', async (a, b, bytes) => {
      single = await burst(a, b, bytes);
    });
    console.log(`Redis -> node B during 200 x 1 KB publishes to a room B has no member in: ${room.bytes} B with per-room channels (${room.foreign} B of that room), ${single.bytes} B with the single channel (${single.foreign} B of that room)`);
    expect(room.foreign).toBe(0);
    expect(single.foreign).toBeGreaterThan(200 * 1024);
    // what Redis sent B meanwhile is its own traffic (flush replies, heartbeats, the marker), not the room's
    expect(room.bytes).toBeLessThan(single.bytes / 10);
    expect(single.bytes).toBeGreaterThan(200 * 1024);
  });

  it('subscriptions follow local membership, batched: 100 rooms joined in one request cost one SUBSCRIBE; the last leave unsubscribes', async () => {
    const g = await startGateway({ WSGATE_REDIS_URL: redis.url });
    try {
      await until(async () => ((await redis.client.call('PUBSUB', 'NUMSUB', `${g.config.keyPrefix}bus`)) as [string, number])[1] === 1); // the server API's channel, from the start
      const subs0 = await redis.calls('subscribe');
      const c = (await connect(g.url, hs({ sub: 'many' }), { json: true })).client;
      const rooms = Array.from({ length: 100 }, (_, i) => `m/${i}`);
      await c.request({ type: 'join', rooms });
      const subscribes = (await redis.calls('subscribe')) - subs0;
      expect(subscribes).toBeGreaterThanOrEqual(1);
      expect(subscribes).toBeLessThanOrEqual(2);
      const channels = async (): Promise<number> => ((await redis.client.call('PUBSUB', 'CHANNELS', `${g.config.keyPrefix}room:*`)) as string[]).length;
      expect(await channels()).toBe(100);
      const d = (await connect(g.url, hs({ sub: 'second' }), { json: true })).client;
      await d.request({ type: 'join', rooms: ['m/0'] });
      await c.request({ type: 'leave', rooms: rooms.slice(0, 50) });
      await until(async () => (await channels()) === 51); // m/0 still has a member
      await c.close();
      await until(async () => (await channels()) === 1);
      await d.close();
      await until(async () => (await channels()) === 0);
    } finally {
      await g.stop();
    }
  });

  it('Redis stalled (SIGSTOP): joins stop waiting for their subscription after one lookup timeout; once Redis answers, the rooms are delivered', async () => {
    const r2 = await startRedis();
    const env = { WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300', WSGATE_KEY_PREFIX: 'stall:' };
    const [a, b] = await Promise.all([startGateway(env), startGateway(env)]);
    try {
      const member = (await connect(a.url, hs({ sub: 'member' }))).client;
      const publisher = (await connect(b.url, hs({ sub: 'publisher' }))).client;
      process.kill(r2.pid()!, 'SIGSTOP');
      try {
        await member.request({ type: 'join', rooms: ['stalled/0'] }); // waits for its SUBSCRIBE, at most 300 ms
        const t0 = performance.now();
        for (let i = 1; i <= 20; i++) expect((await member.request({ type: 'join', rooms: [`stalled/${i}`] })).type).toBe('ack');
        // had each join waited for its subscription, 20 joins would take 20 x 300 ms
        expect(performance.now() - t0).toBeLessThan(10 * 300);
      } finally {
        process.kill(r2.pid()!, 'SIGCONT');
      }
      // the SUBSCRIBEs were sent all along: once Redis answers, publishes from the other node arrive
      await until(async () => {
        await publisher.request({ type: 'publish', room: 'stalled/20', data: 'back' });
        return member.inbox.some((m) => m.type === 'message' && m.data === 'back');
      });
      await Promise.all([member.close(), publisher.close()]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await r2.stop();
    }
  });
});

describe('the bus while Redis stalls', () => {
  it('publishes Redis has not answered are bounded: past the bound a publish fails at once; the unanswered ones complete when Redis is back', async () => {
    const r2 = await startRedis();
    const pub = new Redis(r2.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const sub = new Redis(r2.url);
    for (const c of [pub, sub]) c.on('error', () => undefined);
    await Promise.all([new Promise((r) => pub.once('ready', r)), sub.ping()]);
    const bus = new RedisBus(pub, sub, 'stallbus:', 'room', 300, 50);
    try {
      process.kill(r2.pid()!, 'SIGSTOP');
      const outcomes: string[] = [];
      const all = Array.from({ length: 80 }, (_, i) =>
        bus.publish('r', Buffer.from(`m${i}`)).then(
          () => void outcomes.push('ok'),
          (e: Error) => void outcomes.push(e.name),
        ),
      );
      await until(() => outcomes.length >= 30);
      expect(outcomes).toEqual(Array(30).fill('StoreUnavailable')); // refused at once, not queued
      expect(bus.unanswered).toBe(50);
      process.kill(r2.pid()!, 'SIGCONT');
      await Promise.all(all);
      expect(outcomes.filter((x) => x === 'ok')).toHaveLength(50);
      expect(bus.unanswered).toBe(0);
      // and by bytes: 10 KB payloads against a 35 KB bound, 3 wait and the rest fail at once
      const small = new RedisBus(pub, sub, 'stallbus2:', 'room', 300, 1000, 35_000);
      process.kill(r2.pid()!, 'SIGSTOP');
      const results: string[] = [];
      const more = Array.from({ length: 10 }, () => small.publish('r', Buffer.alloc(10_000)).then(() => void results.push('ok'), (e: Error) => void results.push(e.name)));
      await until(() => results.length >= 7);
      expect(results).toEqual(Array(7).fill('StoreUnavailable'));
      expect([small.unanswered, small.unansweredBytes]).toEqual([3, 30_000]);
      process.kill(r2.pid()!, 'SIGCONT');
      await Promise.all(more);
      expect(results.filter((x) => x === 'ok')).toHaveLength(3);
      expect(small.unansweredBytes).toBe(0);
      await small.close();
    } finally {
      process.kill(r2.pid()!, 'SIGCONT');
      await bus.close();
      pub.disconnect();
      sub.disconnect();
      await r2.stop();
    }
  });
});
