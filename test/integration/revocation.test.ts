// The lookup mode (WSGATE_REVOCATION_MODE=lookup) against a real redis-server: shared round trips,
// timeouts, Redis down, fail-open, and an upgrade aborted while its lookup is stalled. The mirror
// mode (the default) has its own file, revocation-mirror.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, refused } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { hs } from '../helpers/tokens.js';
import { keyOf } from '../../src/keys/keys.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());


describe('pipelining', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url });
  });
  afterAll(() => gw.stop());

  it('1000 concurrent upgrades share at most 50 Redis round trips (MGET calls counted by the server)', async () => {
    const N = 1000;
    const tokens = Array.from({ length: N }, (_, i) => hs({ sub: `u${i}` }));
    await redis.client.set('revoked:pipelining-probe', '1');
    const before = await redis.calls('mget');
    const getsBefore = await redis.calls('get');
    const sockets = await Promise.all(
      tokens.map(
        (t) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(gw.url, { headers: { authorization: `Bearer ${t}` } });
            ws.once('message', () => resolve(ws));
            ws.once('error', reject);
            ws.once('close', (code) => reject(new Error(`closed ${code} before the connected frame`)));
          }),
      ),
    );
    const mgets = (await redis.calls('mget')) - before;
    const gets = (await redis.calls('get')) - getsBefore;
    expect(sockets.length).toBe(N);
    expect(gw.metrics.upgradesAccepted).toBeGreaterThanOrEqual(N);
    expect(mgets).toBeGreaterThan(0);
    expect(mgets).toBeLessThanOrEqual(50);
    expect(gets).toBe(0);
    // The gateway's own count agrees with the server's.
    const m = await (await fetch(`${gw.http}/metrics`)).text();
    expect(m).toMatch(new RegExp(`wsgate_revocation_lookups ${N}\\b`));
    console.log(`1000 concurrent upgrades -> ${mgets} MGET round trips`);
    for (const ws of sockets) ws.terminate();
    await until(() => gw.hub.size === 0);
  });
});

describe('Redis unavailable', () => {
  it('fail-closed: 503 with Retry-After while Redis is down, recovery without restart', async () => {
    const r2 = await startRedis();
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: r2.url });
    try {
      await r2.kill();
      const started = Date.now();
      const r = await refused(connect(gw.url, hs()));
      expect(Date.now() - started).toBeLessThan(5000); // no hang: commands fail fast while Redis is down
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('2');
      expect(r.body).toEqual({ error: 'Service unavailable', code: 'UNAVAILABLE' });
      const ready = await fetch(`${gw.http}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reasons: string[] }).reasons[0]).toMatch(/redis/);
      await r2.restart();
      await until(async () => (await fetch(`${gw.http}/readyz`)).status === 200, 10_000);
      const { client } = await connect(gw.url, hs());
      await client.close();
    } finally {
      await gw.stop();
      await r2.stop();
    }
  });

  it('fail-open: WSGATE_REVOCATION_FAIL_OPEN=true accepts while Redis is down, and counts it', async () => {
    const r2 = await startRedis();
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_FAIL_OPEN: 'true' });
    try {
      await r2.kill();
      const { client, connected } = await connect(gw.url, hs({ sub: 'open' }));
      expect(connected.user).toBe('open');
      expect(gw.metrics.revocationFailOpen).toBe(1);
      await client.close();
      // A bad token is still refused: fail-open concerns revocation only.
      expect((await refused(connect(gw.url, hs({ exp: 1 })))).status).toBe(401);
    } finally {
      await gw.stop();
      await r2.stop();
    }
  });

  it('a lookup slower than WSGATE_REVOCATION_TIMEOUT_MS is refused with 503', async () => {
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_TIMEOUT_MS: '100' });
    try {
      process.kill(redis.pid()!, 'SIGSTOP');
      // Answered by the 100 ms timeout: had it waited for Redis, the end of the pause would have accepted it.
      const r = await refused(connect(gw.url, hs()));
      expect(r.status).toBe(503);
    } finally {
      process.kill(redis.pid()!, 'SIGCONT');
      await gw.stop();
    }
  });
});

describe('aborted upgrades', () => {
  it('a client that gives up while its lookup is stalled (Redis stopped) leaves no crash and nothing registered', async () => {
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_TIMEOUT_MS: '2000' });
    try {
      process.kill(redis.pid()!, 'SIGSTOP');
      const sockets = Array.from({ length: 20 }, (_, i) => {
        const ws = new WebSocket(gw.url, { headers: { authorization: `Bearer ${hs({ sub: `abort${i}` })}` } });
        ws.on('error', () => undefined);
        return ws;
      });
      await until(() => gw.revocations.lookups >= 20);
      for (const ws of sockets) ws.terminate();
      await until(() => gw.metrics.upgradesAborted === 20);
      process.kill(redis.pid()!, 'SIGCONT');
      // Still serving. Redis answers in order, so once this upgrade's lookup is answered, the 20
      // stalled ones were answered before it: none of them may have become a connection.
      const { client } = await connect(gw.url, hs({ sub: 'after' }));
      expect(gw.hub.size).toBe(1);
      expect(gw.metrics.upgradesAccepted).toBe(1);
      await gw.hub.registry.flush();
      expect((await gw.registryStore.list()).filter((e) => e.nodeId === gw.config.nodeId).map((e) => e.userId)).toEqual(['after']);
      await client.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('connection registry in Redis', () => {
  it('registers who is connected, where, since when and until when; removes on close', async () => {
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url });
    try {
      const exp = Math.floor(Date.now() / 1000) + 500;
      const { client, connected } = await connect(gw.url, hs({ sub: 'reg', tenant_id: 't1', exp }));
      await until(async () => (await gw.registryStore.list()).some((e) => e.connId === connected.connectionId));
      const entry = (await gw.registryStore.list()).find((e) => e.connId === connected.connectionId)!;
      expect(entry).toMatchObject({ nodeId: gw.config.nodeId, userId: 'reg', tenantId: 't1', exp });
      expect(Math.abs(entry.since - Date.now())).toBeLessThan(5000);
      const ttl = await redis.client.ttl(`${gw.config.keyPrefix}node:{${keyOf(gw.config.nodeId)}}:conns`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(gw.config.registryTtlSec);
      await client.close();
      await until(async () => !(await gw.registryStore.list()).some((e) => e.connId === connected.connectionId));
    } finally {
      await gw.stop();
    }
  });
});

describe('async upgrades (revocation lookup in flight)', () => {
  it('every socket upgraded after an await gets its connected frame and its replies', async () => {
    // Guards the deferred open of server/gateway.ts: with uWS v20.57, frames sent inside the
    // response's cork at an async upgrade were lost for ~0.2% of sockets.
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url });
    try {
      let replies = 0;
      for (let round = 0; round < 5; round++) {
        const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => connect(gw.url, hs({ sub: `u${i}` })).then((r) => r.client)));
        await Promise.all(
          clients.map(async (c) => {
            if ((await c.request({ type: 'join', rooms: ['r/1'] })).type === 'ack') replies++;
            if ((await c.request({ type: 'presence', room: 'r/1' })).type === 'ack') replies++;
          }),
        );
        await Promise.all(clients.map((c) => c.close()));
      }
      expect(replies).toBe(400);
    } finally {
      await gw.stop();
    }
  });
});
