// Faults: Redis killed during a connect storm, Redis restarted empty (presence and registry
// re-converge from the node's own state), and 10k upgrades aborted mid-authentication.
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { hs } from '../helpers/tokens.js';
import { roomKey } from '../../src/rooms/rooms.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());


/** One upgrade attempt: resolves to 'open', an HTTP status, or 'error'. */
const attempt = (url: string, token: string): Promise<string> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.once('message', () => {
      resolve('open');
      ws.terminate();
    });
    ws.once('unexpected-response', (_q, res) => {
      resolve(String(res.statusCode));
      res.resume();
    });
    ws.once('error', () => resolve('error'));
    ws.once('close', (code) => resolve(`close ${code}`));
  });

describe('Redis killed during a connect storm', () => {
  it('fail-closed: every upgrade is accepted or refused with 503, none hangs past the lookup timeout', async () => {
    const r2 = await startRedis();
    const gw = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300' });
    try {
      const t0 = Date.now();
      const storm = Promise.all(Array.from({ length: 400 }, (_, i) => new Promise<string>((res) => setTimeout(() => res(attempt(gw.url, hs({ sub: `s${i}` }))), i * 2))));
      await new Promise((r) => setTimeout(r, 300));
      await r2.kill();
      const results = await storm;
      const by = results.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
      expect(Object.keys(by).every((k) => k === 'open' || k === '503')).toBe(true);
      expect(by.open).toBeGreaterThan(0);
      expect(by['503']).toBeGreaterThan(0);
      expect(Date.now() - t0).toBeLessThan(400 * 2 + 300 + 3000);
      // Redis back: recovery without a restart.
      await r2.restart();
      await until(async () => (await attempt(gw.url, hs())) === 'open', 10_000);
    } finally {
      await gw.stop();
      await r2.stop();
    }
  });

  it('fail-open: every upgrade is accepted while Redis is gone', async () => {
    const r2 = await startRedis();
    const gw = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300', WSGATE_REVOCATION_FAIL_OPEN: 'true' });
    try {
      const storm = Promise.all(Array.from({ length: 200 }, (_, i) => new Promise<string>((res) => setTimeout(() => res(attempt(gw.url, hs({ sub: `o${i}` }))), i * 2))));
      await new Promise((r) => setTimeout(r, 150));
      await r2.kill();
      expect(new Set(await storm)).toEqual(new Set(['open']));
      expect(gw.metrics.revocationFailOpen).toBeGreaterThan(0);
    } finally {
      await gw.stop();
      await r2.stop();
    }
  });
});

describe('Redis restarted empty', () => {
  it('presence and the registry are rebuilt from the node\'s state within two flush intervals', async () => {
    const r2 = await startRedis();
    const gw = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_PRESENCE_FLUSH_MS: '200', WSGATE_REGISTRY_FLUSH_MS: '200' });
    try {
      const clients = await Promise.all(['ann', 'bob', 'cat'].map(async (sub) => (await connect(gw.url, hs({ sub }))).client));
      for (const c of clients) await c.request({ type: 'join', rooms: ['ops/1'] });
      const members = (): Promise<string[]> => gw.presenceStore.members(roomKey('acme', 'ops/1')).catch(() => []);
      await until(async () => (await members()).length === 3);
      await r2.kill();
      // A change while Redis is away: buffered, not lost.
      await clients[2]!.close();
      await until(() => gw.hub.size === 2 && gw.metrics.flushFailures > 0); // closed, and a flush failed meanwhile
      await r2.restart();
      const back = Date.now();
      await until(async () => JSON.stringify(await members()) === JSON.stringify(['ann', 'bob']), 5000);
      await until(async () => (await gw.registryStore.list().catch(() => [])).length === 2, 5000);
      // Reconnect of the client connection plus two flush intervals.
      expect(Date.now() - back).toBeLessThan(5000); // the client's reconnect, then two 200 ms flushes (slack for loaded machines)
      expect(gw.metrics.flushFailures).toBeGreaterThan(0);
      for (const c of clients.slice(0, 2)) await c.close();
    } finally {
      await gw.stop();
      await r2.stop();
    }
  });
});

describe('aborted upgrades', () => {
  it('10k upgrades aborted mid-authentication: no crash, nothing registered, still serving', async () => {
    // lookup mode: its upgrades wait for Redis, so a stalled Redis holds them mid-authentication
    const gw = await startGateway({ WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_TIMEOUT_MS: '5000' });
    try {
      const token = hs({ sub: 'aborter' });
      const request = Buffer.from(`GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      let aborted = 0;
      for (let batch = 0; batch < 10; batch++) {
        // Stall the lookups so that every upgrade is mid-authentication when its client leaves.
        process.kill(redis.pid()!, 'SIGSTOP');
        await Promise.all(
          Array.from(
            { length: 1000 },
            () =>
              new Promise<void>((resolve) => {
                const s = tcpConnect({ host: '127.0.0.1', port: gw.port });
                s.on('error', () => resolve());
                s.once('connect', () => {
                  s.write(request);
                  setTimeout(() => {
                    s.resetAndDestroy();
                    aborted++;
                    resolve();
                  }, 50);
                });
              }),
          ),
        );
        process.kill(redis.pid()!, 'SIGCONT');
      }
      expect(aborted).toBe(10_000);
      // A client that resets before the server read its request never reaches the upgrade
      // handler; the rest were aborted mid-authentication (or, late in a pause, completed).
      let last = -1;
      await until(() => {
        const now = gw.metrics.upgradesAborted + gw.metrics.upgradesAccepted;
        const stable = now === last;
        last = now;
        return stable;
      }, 20_000);
      expect(gw.metrics.upgradesAborted + gw.metrics.upgradesAccepted).toBeLessThanOrEqual(10_000);
      expect(gw.metrics.upgradesAborted).toBeGreaterThan(5_000);
      await until(() => gw.hub.size === 0);
      await gw.hub.registry.flush();
      expect((await gw.registryStore.list()).filter((e) => e.nodeId === gw.config.nodeId)).toEqual([]);
      const { client } = await connect(gw.url, hs());
      expect((await client.request({ type: 'ping' })).type).toBe('ack');
      await client.close();
    } finally {
      await gw.stop();
    }
  }, 120_000);
});

describe('shutdown', () => {
  it('SIGTERM: sockets closed with 4500, the node leaves the registry at once, the process exits', async () => {
    const r2 = await startRedis();
    const gw = await spawnGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_KEY_PREFIX: 'shut:', WSGATE_NODE_ID: 'shut-node', WSGATE_REGISTRY_FLUSH_MS: '100' });
    try {
      const { client } = await connect(gw.url, hs());
      await until(async () => (await r2.client.exists('shut:node:{9:shut-node}:conns')) === 1);
      const closed = client.closed;
      const code = gw.kill('SIGTERM');
      expect(await closed).toEqual({ code: 4500, reason: 'Server shutting down' });
      expect(await code).toBe(0);
      expect(await r2.client.exists('shut:node:{9:shut-node}:conns')).toBe(0);
    } finally {
      await r2.stop();
    }
  });

  it('SIGTERM while Redis is gone: the process still exits', async () => {
    const r2 = await startRedis();
    const gw = await spawnGateway({ WSGATE_REDIS_URL: r2.url });
    await r2.kill();
    await until(async () => (await fetch(`${gw.http}/readyz`)).status === 503); // the gateway saw Redis go
    expect(await gw.kill('SIGTERM')).toBe(0);
    await r2.stop();
  });
});
