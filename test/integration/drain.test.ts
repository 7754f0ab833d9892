// The drain timeline with real sockets (server/drain.ts): /readyz 503 at once, upgrades still taken
// during the grace, then the listen socket closed and the connections closed with 4500 spread over
// the configured time, never ahead of schedule; the node's registry and presence cleared. The
// bounds asserted follow from the configuration only: a loaded machine makes closes later, never
// earlier.
import { describe, expect, it } from 'vitest';
import { connect, type Client } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { roomKey } from '../../src/rooms/rooms.js';
import { until } from '../helpers/wait.js';

describe('drain', () => {
  it('readyz 503 at once, accepting through the grace, closes spread over the spread, stores cleared', async () => {
    const gw = await startGateway({ WSGATE_PRESENCE_FLUSH_MS: '50', WSGATE_REGISTRY_FLUSH_MS: '50' });
    const n = 120;
    const clients: Client[] = [];
    for (let i = 0; i < n; i++) clients.push((await connect(gw.url, hs({ sub: `u${i}` }))).client);
    await clients[0]!.request({ type: 'join', rooms: ['d/1'] });
    await until(async () => (await gw.registryStore.list()).length === n && (await gw.presenceStore.members(roomKey('acme', 'd/1'))).length === 1);
    const closes: Array<{ at: number; code: number }> = [];
    const track = (c: Client): void => void c.closed.then(({ code }) => closes.push({ at: Date.now(), code }));
    clients.forEach(track);

    const graceMs = 1500;
    const spreadMs = 2000;
    const t0 = Date.now();
    const drained = gw.drain({ graceSec: graceMs / 1000, spreadSec: spreadMs / 1000 });
    const ready = await fetch(`${gw.http}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reasons: ['draining'] });
    // Still accepting during the grace (a load balancer has not noticed yet).
    const late = await connect(gw.url, hs({ sub: 'late' }));
    expect(Date.now() - t0).toBeLessThan(graceMs); // else this machine is too loaded for the check above to mean anything
    track(late.client);

    await drained;
    const open = n + 1;
    await until(() => closes.length === open);
    expect(closes.every((c) => c.code === 4500)).toBe(true);
    // Never ahead of schedule: by time t, at most ceil(open * (t - t0 - grace) / spread) closed.
    closes.sort((a, b) => a.at - b.at);
    closes.forEach((c, i) => expect(i + 1).toBeLessThanOrEqual(Math.ceil((open * Math.max(0, c.at - t0 - graceMs + 2)) / spreadMs)));
    // Spread, not at once: the first and last close lie far apart (a quarter of the spread is
    // what the schedule allows to be lost to timer delays on a loaded machine).
    expect(closes.at(-1)!.at - closes[0]!.at).toBeGreaterThanOrEqual(spreadMs / 4);
    expect(gw.drained).toMatchObject({ open, closed: open });
    expect(gw.drained!.acceptedUntilMs).toBeGreaterThanOrEqual(graceMs - 2);
    // The listen socket is closed, the node left the registry and presence.
    await expect(connect(gw.url, hs())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await gw.registryStore.list()).toEqual([]);
    expect(await gw.presenceStore.members(roomKey('acme', 'd/1'))).toEqual([]);
  }, 20_000);

  it('stop() during a drain hurries it: the rest of the grace is skipped and every connection closes at once', async () => {
    const gw = await startGateway();
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(gw.url, hs({ sub: `h${i}` })).then((r) => r.client)));
    const drained = gw.drain({ graceSec: 60, spreadSec: 60 });
    await until(async () => (await fetch(`${gw.http}/readyz`)).status === 503);
    const t0 = Date.now();
    await gw.stop();
    await drained;
    for (const c of clients) expect((await c.closed).code).toBe(4500);
    expect(Date.now() - t0).toBeLessThan(10_000); // not the 60 s grace
  });
});

describe('listening', () => {
  it('the port is free again right after a drain with live clients (the server closed first: TIME_WAIT)', async () => {
    const gw = await startGateway();
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(gw.url, hs({ sub: `t${i}` })).then((r) => r.client)));
    await gw.stop();
    for (const c of clients) expect((await c.closed).code).toBe(4500);
    // Port 0 was resolved to a fixed port, so uWS set SO_REUSEADDR: the TIME_WAIT sockets the
    // server's first FINs left do not block the port for 60 s.
    const again = await startGateway({ WSGATE_PORT: String(gw.port) });
    expect(again.port).toBe(gw.port);
    await again.stop();
  });

  it('a single process listens exclusively: a second gateway on its port fails instead of sharing it', async () => {
    const gw = await startGateway();
    try {
      await expect(startGateway({ WSGATE_PORT: String(gw.port) })).rejects.toThrow(/cannot listen/);
    } finally {
      await gw.stop();
    }
  });
});

describe('drain through the server API (POST /v1/drain)', () => {
  const KEY = 'drain-key-0123456789abcdefghijklmnopqrstuvwxyz';
  const drainBy = async (adminPort: number, body: unknown): Promise<{ status: number; body: unknown }> => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/v1/drain`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };

  for (const workers of ['1', '2']) {
    it(`${workers === '1' ? 'one process' : 'two workers: the whole host'}: 202 at once, every connection closed with 4500, exit 0`, async () => {
      const adminPort = await freePort();
      const gw = await spawnGateway({ WSGATE_WORKERS: workers, WSGATE_ADMIN_PORT: String(adminPort), WSGATE_ADMIN_KEYS: KEY });
      const exited = new Promise<number | null>((r) => gw.proc.once('exit', (code) => r(code)));
      const clients = await Promise.all(Array.from({ length: 6 }, async (_, i) => (await connect(gw.url, hs({ sub: `d${i}` }))).client));
      expect(await drainBy(adminPort, { graceSec: 7200 })).toEqual({ status: 400, body: { error: 'Malformed request', code: 'BAD_REQUEST' } });
      // no grace and no spread: the listeners close at once, after the answer has left (red team: it got none)
      const r = await drainBy(adminPort, { graceSec: 0, drainSec: 0 });
      expect(r.status).toBe(202);
      expect(r.body).toMatchObject({ draining: true, graceSec: 0, drainSec: 0 });
      for (const c of clients) expect(await c.closed).toEqual({ code: 4500, reason: 'Server shutting down' });
      expect(await exited).toBe(0);
    });
  }
});
