// Containment: a failure inside one handler (a store that throws, an encoder that throws, a timer
// tick, a bus message, the upgrade, open, close, an HTTP route) is counted and logged, closes at
// most the one socket it belongs to (1011) or answers the one request (500), and everything else
// keeps being served. Faults are injected into a real gateway's parts; clients are real sockets.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';
import { roomKey } from '../../src/rooms/rooms.js';

let redis: TestRedis;
let gw: TestGateway;
let bystander: Client;
const restore: Array<() => void> = [];

/** Replaces obj[key] for one test. */
function inject<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): void {
  const old = obj[key];
  obj[key] = value;
  restore.push(() => {
    obj[key] = old;
  });
}

beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_PRESENCE_FLUSH_MS: '50', WSGATE_EXPIRY_SWEEP_MS: '50' });
  bystander = (await connect(gw.url, hs({ sub: 'bystander' }))).client;
  await bystander.request({ type: 'join', rooms: ['watch'] });
});
afterEach(() => {
  while (restore.length > 0) restore.pop()!();
});
afterAll(async () => {
  await bystander.close();
  await gw.stop();
  await redis.stop();
});

const errors = (where: string): number => gw.metrics.internalErrors.get(where) ?? 0;

async function bystanderFine(): Promise<void> {
  expect((await bystander.request({ type: 'ping' })).type).toBe('ack');
  expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
}

describe('a failure in one socket\'s handler closes that socket with 1011, and only it', () => {
  it('a store that throws synchronously inside a request', async () => {
    inject(gw.presenceStore, 'members', () => {
      throw new Error('injected: members threw');
    });
    const { client } = await connect(gw.url, hs({ sub: 'victim' }));
    const before = errors('message');
    client.send({ id: 1, type: 'presence', room: 'watch' });
    expect(await client.closed).toEqual({ code: 1011, reason: 'Internal error' });
    expect(errors('message')).toBe(before + 1);
    await bystanderFine();
    // logged once, with its stack
    expect(gw.logs.some((l) => l.includes('injected: members threw') && l.includes('"stack"'))).toBe(true);
  });

  it('a store answer that the encoder cannot encode (after an await)', async () => {
    inject(gw.presenceStore, 'members', () => Promise.resolve([1n as unknown as string]));
    const { client } = await connect(gw.url, hs({ sub: 'victim2' }), { json: true });
    const before = errors('presence');
    client.send({ id: 1, type: 'presence', room: 'watch' });
    expect(await client.closed).toEqual({ code: 1011, reason: 'Internal error' });
    expect(errors('presence')).toBe(before + 1);
    await bystanderFine();
  });

  it('the token:refresh continuation', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'victim3' }));
    const hub = gw.hub as unknown as { registry: { add: (e: unknown) => void } };
    inject(hub.registry, 'add', () => {
      throw new Error('injected: registry add threw');
    });
    const before = errors('refresh');
    client.send({ id: 1, type: 'token:refresh', token: hs({ sub: 'victim3' }) });
    expect(await client.closed).toEqual({ code: 1011, reason: 'Internal error' });
    expect(errors('refresh')).toBe(before + 1);
    await bystanderFine();
  });

  it('open', async () => {
    inject(gw.hub, 'open', () => {
      throw new Error('injected: open threw');
    });
    const before = errors('open');
    // the connected frame left with the 101 (it is sent inside the upgrade); the session's
    // bookkeeping after it failed, so the socket is closed with 1011
    const closed = await connect(gw.url, hs({ sub: 'victim4' })).then(
      ({ client }) => client.closed,
      (e: { code?: number; reason?: string }) => ({ code: e.code, reason: e.reason }),
    );
    expect(closed).toEqual({ code: 1011, reason: 'Internal error' });
    expect(errors('open')).toBe(before + 1);
    expect(gw.hub.size).toBe(1); // the bystander only
    await bystanderFine();
  });
});

describe('failures outside a socket\'s request', () => {
  it('the upgrade decision: answered 500 INTERNAL, counted; the next upgrade is fine', async () => {
    inject(gw.hub, 'admit', () => {
      throw new Error('injected: admit threw');
    });
    const before = errors('upgrade');
    const r = await refused(connect(gw.url, hs({ sub: 'up' })));
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: 'Internal error', code: 'INTERNAL' });
    expect(errors('upgrade')).toBe(before + 1);
    restore.pop()!();
    const { client } = await connect(gw.url, hs({ sub: 'up' }));
    await client.close();
  });

  it('close: counted, the process goes on', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'closer' }));
    const size = gw.hub.size;
    inject(gw.hub, 'close', () => {
      throw new Error('injected: close threw');
    });
    const before = errors('close');
    await client.close();
    await until(() => errors('close') === before + 1);
    restore.pop()!();
    // the injected close did nothing, so the session stayed with a dead socket; the next sweep cannot
    // read it, closes it with 1011, which uWS refuses (closed already), and forgets it: no leak
    await until(() => gw.hub.size === size - 1);
    expect(errors('sweep/close')).toBeGreaterThanOrEqual(1);
    await bystanderFine();
  });

  it('a timer tick: the presence flush throws; counted, and the next ticks run', async () => {
    let calls = 0;
    inject(gw.hub, 'flushPresence', () => {
      calls++;
      throw new Error('injected: flush threw');
    });
    await until(() => calls >= 3); // the interval kept firing after the first throw
    expect(errors('presence-flush')).toBeGreaterThanOrEqual(3);
    await bystanderFine();
  });

  it('the sweep: a socket whose buffered amount cannot be read is closed with 1011; the sweep goes on for the others', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'sweepy' }));
    const port = (gw.hub as unknown as { lifetime: { port: { buffered: (ws: { getUserData(): { conn?: { userId: string } } }) => number } } }).lifetime.port;
    const real = port.buffered;
    inject(port, 'buffered', (ws) => {
      if (ws.getUserData().conn?.userId === 'sweepy') throw new Error('injected: buffered threw');
      return real(ws);
    });
    expect(await client.closed).toEqual({ code: 1011, reason: 'Internal error' });
    expect(errors('sweep')).toBeGreaterThanOrEqual(1);
    await bystanderFine();
  });

  it('a malformed bus envelope from another node is dropped and counted', async () => {
    const raw = new Redis(redis.url);
    // the node subscribes to a room's channel once it has a member there
    const { client: member } = await connect(gw.url, hs({ sub: 'member' }));
    await member.request({ type: 'join', rooms: ['junk/1'] });
    const channel = `${gw.config.keyPrefix}room:${roomKey('acme', 'junk/1')}`;
    try {
      const before = gw.metrics.busMalformed;
      await raw.publish(channel, Buffer.from([0xc1, 0xff, 0x00]));
      await raw.publish(channel, Buffer.from('{"k":"r"}'));
      await raw.publish(channel, Buffer.alloc(0));
      await until(() => gw.metrics.busMalformed >= before + 3);
      expect((await member.request({ type: 'ping' })).type).toBe('ack');
      await bystanderFine();
    } finally {
      raw.disconnect();
      await member.close();
    }
  });

  it('an HTTP route: /metrics answers 500 INTERNAL, /healthz and sockets are fine', async () => {
    inject(gw.metrics, 'render', () => {
      throw new Error('injected: render threw');
    });
    const res = await fetch(`${gw.http}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'Internal error', code: 'INTERNAL' });
    expect(errors('http-metrics')).toBeGreaterThanOrEqual(1);
    await bystanderFine();
  });

  it('logging is rate limited: a burst of failures writes a bounded number of lines', async () => {
    inject(gw.presenceStore, 'members', () => {
      throw new Error('injected: burst');
    });
    const lines0 = gw.logs.filter((l) => l.includes('injected: burst')).length;
    const counted0 = errors('message');
    const victims = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await connect(gw.url, hs({ sub: `burst${i}` }))).client));
    // a room of its own: 'watch' may still have an answer cached from the tests above (250 ms)
    for (const v of victims) v.send({ id: 1, type: 'presence', room: 'burst' });
    await Promise.all(victims.map((v) => v.closed));
    const lines = gw.logs.filter((l) => l.includes('injected: burst')).length - lines0;
    expect(errors('message') - counted0).toBe(40); // every failure is counted
    expect(lines).toBeLessThanOrEqual(20); // but at most 10 lines a second are written (over at most two seconds)
    await bystanderFine();
  });
});

describe('the process-level policy (what escapes every containment)', () => {
  // A module preloaded into the gateway process schedules the failure once it is serving.
  const preload = (code: string): string => `--import=data:text/javascript,${encodeURIComponent(`setTimeout(() => { ${code} }, 1500).unref()`)}`;

  it('an unhandled rejection is counted and logged; the process keeps serving', async () => {
    const p = await spawnGateway({ NODE_OPTIONS: preload("Promise.reject(new Error('injected: nobody handles me'))") });
    try {
      const { client } = await connect(p.url, hs({ sub: 'stays' }));
      await until(async () => /wsgate_internal_errors_total\{where="unhandled-rejection"\} 1/.test(await (await fetch(`${p.http}/metrics`)).text()), 8000);
      expect((await client.request({ type: 'ping' })).type).toBe('ack');
      await client.close();
    } finally {
      expect(await p.kill()).toBe(0);
    }
  });

  it('an uncaught exception: counted and logged, sockets closed with 4500 (reconnect), exit status 1', async () => {
    const p = await spawnGateway({ NODE_OPTIONS: preload("throw new Error('injected: escaped everything')") });
    const { client } = await connect(p.url, hs({ sub: 'moves' }));
    expect(await client.closed).toEqual({ code: 4500, reason: 'Server shutting down' });
    expect(await p.kill()).toBe(1);
    expect(p.output.some((l) => l.includes('uncaught-exception') && l.includes('injected: escaped everything'))).toBe(true);
  });
});
