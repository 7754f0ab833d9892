// wsgate/client in Node when the connection goes away: a gateway restart (4500), a reset
// network (1006), a dead peer (only the heartbeat can tell), the offline queue and its bounds,
// bounded retries, and Retry-After.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WsgateClient } from '../../src/client/client.js';
import type { WsgateError } from '../../src/client/errors.js';
import { connect, type ConnectOptions } from '../../src/client/node.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { record, seen, states, tokenSource } from '../helpers/sdk.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function client(url: string, getToken: () => string, options: Partial<ConnectOptions> = {}): WsgateClient {
  const c = connect({ url, getToken, reconnect: { baseDelayMs: 20, maxDelayMs: 200, maxAttempts: 200 }, ...options });
  cleanup.push(() => c.close());
  return c;
}

async function gateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startGateway(env);
  cleanup.push(() => gw.stop());
  return gw;
}

/** A ws:// URL on a port where nothing listens. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return `ws://127.0.0.1:${port}/ws`;
}

const failure = (p: Promise<unknown>): Promise<WsgateError> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as WsgateError,
  );

describe('reconnect', () => {
  it('the gateway restarts (behind a stable address): a fresh token, the rooms joined again, then what was queued', async () => {
    const before = await gateway();
    const front = await startTcpProxy(before.port);
    cleanup.push(() => front.close());
    const tokens = tokenSource(() => hs({ sub: 'ivy' }));
    const c = client(front.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    await c.join(['chat/1', 'chat/2']);
    await before.stop(); // drains: every socket closed with 4500
    await seen(rec, 'state', (s) => s.state === 'reconnecting');
    expect(rec.state[1]).toMatchObject({ code: 4500, reason: 'Server shutting down', attempt: 1 });
    // Made while the gateway is away: waits in the queue.
    const queued = c.publish('chat/2', 'sent while down', { echo: true });
    expect(c.queued).toBe(1);

    await seen(rec, 'state', (s) => s.state === 'reconnecting' && s.code === 1006); // the gateway is away: attempts fail
    const gw = await gateway();
    front.retarget(gw.port);
    await until(() => rec.connected.length === 2);
    expect(c.state).toBe('connected');
    expect(states(rec).at(-1)).toBe('connected');
    expect(new Set(states(rec).slice(1, -1))).toEqual(new Set(['reconnecting'])); // refused connects in between, if any
    expect(tokens.calls).toBe(rec.state.filter((s) => s.state === 'reconnecting').length + 1); // getToken for every attempt
    expect(new Set(tokens.tokens).size).toBe(tokens.calls);
    // The queued publish went out after the rooms were joined again: its echo arrives.
    expect((await queued).ts).toBeTypeOf('number');
    await seen(rec, 'message', (m) => m.data === 'sent while down' && m.room === 'chat/2');
    expect(c.queued).toBe(0);
    const peer = client(gw.url, () => hs({ sub: 'peer' }));
    await peer.publish('chat/1', 'after the restart');
    await seen(rec, 'message', (m) => m.data === 'after the restart');
    expect(rec.error).toEqual([]);
  });

  it('network loss (1006): reconnects and joins again; a request in flight fails with DISCONNECTED', async () => {
    const gw = await gateway();
    const proxy = await startTcpProxy(gw.port);
    cleanup.push(() => proxy.close());
    const c = client(proxy.url, () => hs({ sub: 'jack' }), { encoding: 'json' });
    const rec = record(c);
    await c.ready();
    await c.join('lobby');
    const inFlight = failure(c.presence('lobby'));
    proxy.cut();
    expect(await inFlight).toMatchObject({ code: 'DISCONNECTED', closeCode: 1006 });
    await until(() => states(rec).join() === 'connected,reconnecting,connected');
    expect(rec.state[1]).toMatchObject({ code: 1006 });
    expect(proxy.accepted).toBe(2);
    const peer = client(gw.url, () => hs({ sub: 'peer' }));
    await peer.publish('lobby', 'hello again');
    await seen(rec, 'message', (m) => m.data === 'hello again');
  });

  it('a dead peer (the network freezes, no close): requests time out, the heartbeat drops the socket, the client reconnects', async () => {
    const gw = await gateway();
    const proxy = await startTcpProxy(gw.port);
    cleanup.push(() => proxy.close());
    const c = client(proxy.url, () => hs({ sub: 'kate' }), { pingIntervalMs: 200, requestTimeoutMs: 600 });
    const rec = record(c);
    await c.ready();
    await c.join('lobby');
    proxy.freeze();
    expect(await failure(c.publish('lobby', 'into the void'))).toMatchObject({ code: 'TIMEOUT', request: 'publish' });
    await until(() => states(rec).join() === 'connected,reconnecting,connected');
    expect(rec.state[1]).toMatchObject({ code: 1006, reason: 'no reply to ping' });
    expect(proxy.accepted).toBe(2);
    expect(c.rooms).toEqual(['lobby']);
    expect((await c.ping()).ts).toBeTypeOf('number');
  });

  it('the offline queue: bounded by maxQueued, and by requestTimeoutMs counted from the call', async () => {
    const c = client(await deadUrl(), () => hs({ sub: 'lee' }), { maxQueued: 2, requestTimeoutMs: 400 });
    const [a, b] = [failure(c.publish('chat/1', 1)), failure(c.join('chat/1'))];
    expect(c.queued).toBe(2);
    expect(await failure(c.publish('chat/1', 3))).toMatchObject({ code: 'QUEUE_FULL', request: 'publish' });
    expect(await a).toMatchObject({ code: 'TIMEOUT', request: 'publish' });
    expect(await b).toMatchObject({ code: 'TIMEOUT', request: 'join' });
    expect(c.queued).toBe(0);
    expect(c.state).toBe('reconnecting');
  });

  it("offline: 'fail' rejects at once while not connected", async () => {
    const c = client(await deadUrl(), () => hs({ sub: 'max' }), { offline: 'fail' });
    expect(await failure(c.publish('chat/1', 1))).toMatchObject({ code: 'NOT_CONNECTED', request: 'publish' });
    expect(c.queued).toBe(0);
  });

  it('bounded retries: after maxAttempts the client closes, with the last close code', async () => {
    const tokens = tokenSource(() => hs({ sub: 'ned' }));
    const c = client(await deadUrl(), tokens.getToken, { reconnect: { baseDelayMs: 10, maxDelayMs: 40, maxAttempts: 3 } });
    const rec = record(c);
    await expect(c.ready()).rejects.toMatchObject({ code: 'CLOSED', closeCode: 1006, message: expect.stringContaining('gave up after 3 attempts') });
    expect(rec.state.map((s) => `${s.state}${s.attempt ?? ''}`)).toEqual(['reconnecting1', 'reconnecting2', 'reconnecting3', 'closed']);
    expect(rec.state.every((s) => s.code === 1006)).toBe(true);
    expect(tokens.calls).toBe(4);
  });

  it('reconnect: false closes at the first loss', async () => {
    const gw = await gateway();
    const c = client(gw.url, () => hs({ sub: 'oli' }), { reconnect: false });
    const rec = record(c);
    await c.ready();
    await gw.stop();
    await until(() => c.state === 'closed');
    expect(rec.state.map((s) => `${s.state}:${s.code}`)).toEqual(['connected:undefined', 'closed:4500']);
  });

  it('429 Too many connections: the next attempt waits for Retry-After, then connects', async () => {
    const gw = await gateway({ WSGATE_MAX_CONNECTIONS_PER_USER: '1' });
    const first = client(gw.url, () => hs({ sub: 'pat' }));
    await first.ready();
    const second = client(gw.url, () => hs({ sub: 'pat' }));
    const rec = record(second);
    const retry = await seen(rec, 'state', (s) => s.state === 'reconnecting');
    expect(retry).toMatchObject({ code: 4508, refusal: { status: 429, code: 'TOO_MANY_CONNECTIONS', retryAfterSec: 2 } });
    expect(retry.delayMs).toBeGreaterThanOrEqual(2000);
    await first.close();
    await second.ready();
    expect(states(rec)).toEqual(['reconnecting', 'connected']);
  });
});
