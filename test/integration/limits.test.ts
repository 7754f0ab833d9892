// Per-connection request rate limit, connection caps, and slow consumers: each with its reply
// error or close code, others unaffected.
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, open, refused } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/wait.js';
import { hs } from '../helpers/tokens.js';

describe('request rate limit', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ WSGATE_RATE_LIMIT: '10', WSGATE_RATE_BURST: '20' });
  });
  afterAll(() => gw.stop());

  it('a burst beyond the bucket gets RATE_LIMITED replies; the connection stays open and recovers', async () => {
    const { client } = await connect(gw.url, hs(), { json: true });
    for (let i = 1; i <= 30; i++) client.send({ id: i, type: 'ping' });
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => client.next((m) => m.ref === i + 1)));
    const limited = replies.filter((r) => r.type === 'error' && r.code === 'RATE_LIMITED');
    expect(replies.filter((r) => r.type === 'ack').length).toBeGreaterThanOrEqual(20);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(limited[0]).toMatchObject({ message: 'Rate limit exceeded' });
    // the bucket refills at 10/s: a ping gets through again
    await until(async () => (await client.request({ type: 'ping' })).type === 'ack', 3000, 50);
    await client.close();
  });

  it('a flood that goes on is closed with 4502; other connections are unaffected', async () => {
    const { client: calm } = await connect(gw.url, hs({ sub: 'calm' }));
    const { client: flood } = await connect(gw.url, hs({ sub: 'flood' }), { json: true });
    for (let i = 1; i <= 200; i++) flood.send({ id: i, type: 'ping' });
    expect(await flood.closed).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
    expect((await calm.request({ type: 'ping' })).type).toBe('ack');
    expect(gw.metrics.rateLimitCloses).toBe(1);
    await calm.close();
  });
});

describe('connection caps', () => {
  it('per user and per tenant: 429 TOO_MANY_CONNECTIONS, freed on close', async () => {
    const gw = await startGateway({ WSGATE_MAX_CONNECTIONS_PER_USER: '2', WSGATE_MAX_CONNECTIONS_PER_TENANT: '3' });
    try {
      const a1 = (await connect(gw.url, hs({ sub: 'a', tenant_id: 't1' }))).client;
      const a2 = (await connect(gw.url, hs({ sub: 'a', tenant_id: 't1' }))).client;
      const r = await refused(connect(gw.url, hs({ sub: 'a', tenant_id: 't1' })));
      expect(r.status).toBe(429);
      expect(r.body).toEqual({ error: 'Too many connections', code: 'TOO_MANY_CONNECTIONS' });
      expect(r.headers['retry-after']).toBe('2');
      // the same sub in another tenant is another user
      const other = (await connect(gw.url, hs({ sub: 'a', tenant_id: 't2' }))).client;
      const b1 = (await connect(gw.url, hs({ sub: 'b', tenant_id: 't1' }))).client;
      expect((await refused(connect(gw.url, hs({ sub: 'c', tenant_id: 't1' })))).status).toBe(429);
      await a1.close();
      await until(() => gw.hub.size === 3);
      const c1 = (await connect(gw.url, hs({ sub: 'c', tenant_id: 't1' }))).client;
      await Promise.all([a2.close(), other.close(), b1.close(), c1.close()]);
    } finally {
      await gw.stop();
    }
  });

  it('node-wide: WSGATE_MAX_CONNECTIONS refuses with 503; close mode uses 4508 for user caps', async () => {
    const gw = await startGateway({ WSGATE_MAX_CONNECTIONS: '1', WSGATE_MAX_CONNECTIONS_PER_USER: '1' });
    const gw2 = await startGateway({ WSGATE_MAX_CONNECTIONS_PER_USER: '1', WSGATE_REFUSAL_MODE: 'close' });
    try {
      const first = (await connect(gw.url, hs({ sub: 'x' }))).client;
      expect((await refused(connect(gw.url, hs({ sub: 'y' })))).status).toBe(503);
      const keep = (await connect(gw2.url, hs({ sub: 'z' }))).client;
      const second = await open(gw2.url, { token: hs({ sub: 'z' }) });
      expect(await second.closed).toEqual({ code: 4508, reason: 'Too many connections' });
      await Promise.all([first.close(), keep.close()]);
    } finally {
      await gw.stop();
      await gw2.stop();
    }
  });
});

describe('slow consumers', () => {
  it('a subscriber that never reads is closed with 4501 and counted; the others keep receiving', async () => {
    const gw = await startGateway({ WSGATE_MAX_BACKPRESSURE_BYTES: '65536', WSGATE_EXPIRY_SWEEP_MS: '50', WSGATE_RATE_LIMIT: '0', WSGATE_RATE_LIMIT_BYTES: '0', WSGATE_MAX_PUBLISH_BYTES: '65536' });
    try {
      const { client: reader } = await connect(gw.url, hs({ sub: 'reader' }), { json: true });
      const { client: publisher } = await connect(gw.url, hs({ sub: 'pub' }), { json: true });
      await reader.request({ type: 'join', rooms: ['big'] });
      // A raw socket that upgrades, joins, then stops reading.
      const token = hs({ sub: 'stuck' });
      const stuck = tcpConnect({ host: '127.0.0.1', port: gw.port });
      let seen = '';
      stuck.on('data', (d: Buffer) => (seen += d.toString('latin1')));
      await new Promise<void>((resolve) => stuck.once('connect', () => resolve()));
      stuck.write(`GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: wsgate.v1.json\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      const join = Buffer.from(JSON.stringify({ id: 1, type: 'join', rooms: ['big'] }));
      const frame = Buffer.concat([Buffer.from([0x81, 0x80 | join.length, 0, 0, 0, 0]), join]);
      await until(() => seen.includes('"type":"connected"'));
      stuck.write(frame);
      await until(() => seen.includes('"ref":1'));
      stuck.pause(); // never read again: the kernel buffers fill, then the gateway's
      const data = 'x'.repeat(32000); // loopback socket buffers absorb several MB first
      let received = 0;
      reader.ws.on('message', () => received++);
      for (let i = 0; i < 2000 && gw.metrics.slowConsumerCloses === 0; i++) {
        await publisher.request({ type: 'publish', room: 'big', data });
      }
      expect(gw.metrics.slowConsumerCloses).toBe(1);
      expect(received).toBeGreaterThan(50);
      expect((await reader.request({ type: 'ping' })).type).toBe('ack');
      stuck.destroy();
      await Promise.all([reader.close(), publisher.close()]);
    } finally {
      await gw.stop();
    }
  });
});
