// wsgate/client in Node against a real gateway: both encodings, requests and replies, pushes,
// token refresh before expiry, revocation and refusals. Reconnects: reconnect.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WsgateClient } from '../../src/client/client.js';
import { WsgateError } from '../../src/client/errors.js';
import { decode, encode } from '../../src/client/msgpack.js';
import { connect, nodeSocket, type ConnectOptions } from '../../src/client/node.js';
import type { OpenSocket } from '../../src/client/transport.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { record, seen, states, tokenSource } from '../helpers/sdk.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { hs, now } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const open: WsgateClient[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function client(url: string, getToken: () => string, options: Partial<ConnectOptions> = {}): WsgateClient {
  const c = connect({ url, getToken, reconnect: { baseDelayMs: 20, maxDelayMs: 200 }, ...options });
  open.push(c);
  return c;
}

const failure = (p: Promise<unknown>): Promise<WsgateError> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as WsgateError,
  );

describe('a session', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.stop());

  for (const [encoding, other] of [['msgpack', 'json'], ['json', 'msgpack']] as const) {
    it(`${encoding}: join, publish to a ${other} client and back, binary data, presence, typed reply errors`, async () => {
      // Users of their own per test: presence notifications are per-user transitions.
      const [a, b] = [`alice-${encoding}`, `bob-${encoding}`];
      const alice = client(gw.url, () => hs({ sub: a, permissions: ['join:chat/*', 'publish:chat/*', 'presence:chat/*'] }), { encoding });
      const bob = client(gw.url, () => hs({ sub: b }), { encoding: other });
      const [ra, rb] = [record(alice), record(bob)];
      const session = await alice.ready();
      expect(session).toMatchObject({ user: a, tenant: 'acme', protocol: `wsgate.v1.${encoding}`, permissions: ['join:chat/*', 'publish:chat/*', 'presence:chat/*'] });
      expect(alice.state).toBe('connected');
      expect(await alice.join('chat/1')).toEqual(['chat/1']);
      await bob.ready();
      expect(await bob.join(['chat/1'])).toEqual(['chat/1']);
      expect(alice.rooms).toEqual(['chat/1']);

      const ack = await bob.publish('chat/1', { text: 'hi', n: [1, -2, 3.5, 2 ** 40] });
      const m = await seen(ra, 'message');
      expect(m).toMatchObject({ type: 'message', room: 'chat/1', from: b, ts: ack.ts, data: { text: 'hi', n: [1, -2, 3.5, 2 ** 40] } });
      await alice.publish('chat/1', 'back');
      expect((await seen(rb, 'message')).data).toBe('back');
      expect(ra.message).toHaveLength(1); // no echo unless asked
      // Binary data: bytes over msgpack; a JSON publisher sends them as base64, as the gateway documents for JSON.
      await alice.publish('chat/1', { bin: Uint8Array.of(1, 2, 3) }, { echo: true });
      expect((await seen(ra, 'message', (x) => (x.data as { bin?: unknown }).bin !== undefined)).data).toEqual({ bin: encoding === 'msgpack' ? Uint8Array.of(1, 2, 3) : 'AQID' });
      // and across encodings: msgpack bytes reach a JSON member as base64 (a JSON publisher's base64 stays a string)
      expect((await seen(rb, 'message', (x) => (x.data as { bin?: unknown }).bin !== undefined)).data).toEqual({ bin: 'AQID' });

      // The push follows the batched presence flush; the request reads what was flushed.
      await seen(ra, 'presence', (p) => p.room === 'chat/1' && p.joined.includes(b));
      expect(await alice.presence('chat/1')).toEqual({ room: 'chat/1', users: [a, b] });

      const forbidden = await failure(alice.join(['chat/2', 'secret/1']));
      expect(forbidden).toBeInstanceOf(WsgateError);
      expect(forbidden).toMatchObject({ code: 'FORBIDDEN', message: 'Forbidden', request: 'join' });
      expect((await failure(alice.publish('chat//x', 1))).code).toBe('BAD_ROOM');
      expect(alice.rooms).toEqual(['chat/1']); // all or nothing: chat/2 was not joined

      // Many requests in flight at once, each answered by its own reply.
      const rooms = Array.from({ length: 40 }, (_, i) => `chat/${i}`);
      expect((await Promise.all(rooms.map((r) => alice.presence(r)))).map((p) => p.room)).toEqual(rooms);
      expect(await alice.leave(['chat/1', 'chat/9'])).toEqual(['chat/1']);
      expect(alice.rooms).toEqual([]);
      expect(states(ra)).toEqual(['connected']);
      expect(ra.error).toEqual([]);
    });
  }

  it('frame limits: an oversized request fails locally and the socket stays; the publish limit is the gateway\'s reply', async () => {
    const c = client(gw.url, () => hs({ sub: 'big' }), { encoding: 'json' });
    const rec = record(c);
    await c.ready();
    expect(await failure(c.publish('chat/1', 'x'.repeat(70_000)))).toMatchObject({ code: 'FRAME_TOO_LARGE', request: 'publish' });
    expect(await failure(c.publish('chat/1', '€'.repeat(22_000)))).toMatchObject({ code: 'FRAME_TOO_LARGE' }); // 22k characters, 66 kB of UTF-8
    expect((await failure(c.publish('chat/1', 'x'.repeat(20_000)))).code).toBe('PAYLOAD_TOO_LARGE'); // WSGATE_MAX_PUBLISH_BYTES
    expect((await failure(c.request({ type: 'publish', room: 'chat/1', data: BigInt(1), echo: false }))).code).toBe('ENCODE_FAILED');
    expect((await c.ping()).ts).toBeTypeOf('number');
    expect(states(rec)).toEqual(['connected']);
  });

  it('a protocol violation (4401) closes the client for good: no reconnect', async () => {
    // A socket that sends MessagePack bytes as text frames: the gateway closes with 4401.
    const textFrames: OpenSocket = (url, protocol, token, events) => {
      const s = nodeSocket({})(url, protocol, token, events);
      return { ...s, send: (d) => s.send(typeof d === 'string' ? d : Buffer.from(d).toString('latin1')) };
    };
    const tokens = tokenSource(() => hs({ sub: 'rude' }));
    const c = new WsgateClient({ url: gw.url, getToken: tokens.getToken, reconnect: { baseDelayMs: 10 } }, textFrames, { encode, decode });
    open.push(c);
    const rec = record(c);
    await c.ready();
    expect((await failure(c.ping())).code).toBe('DISCONNECTED');
    await until(() => c.state === 'closed');
    expect(rec.state.at(-1)).toMatchObject({ state: 'closed', code: 4401, reason: 'Wrong frame type for subprotocol' });
    expect(states(rec)).toEqual(['connected', 'closed']);
    expect(tokens.calls).toBe(1);
    expect((await failure(c.ping())).code).toBe('CLOSED');
    await expect(c.ready()).rejects.toMatchObject({ code: 'CLOSED', closeCode: 4401 });
  });

  it('close() ends the session: pending and queued requests fail with CLOSED, nothing reconnects', async () => {
    const tokens = tokenSource(() => hs({ sub: 'leaver' }));
    const c = client(gw.url, tokens.getToken);
    const early = c.ping(); // queued until connected
    await c.ready();
    await early;
    const inFlight = failure(c.presence('chat/1'));
    await c.close();
    expect(c.state).toBe('closed');
    expect((await inFlight).code).toBe('CLOSED');
    expect(tokens.calls).toBe(1);
    await until(() => gw.hub.size === 0);
  });
});

describe('token refresh, revocation and refusals', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // token:expiring 2 s before exp, swept every 100 ms, no clock tolerance: exp is exp.
    gw = await startGateway({ WSGATE_TOKEN_EXPIRING_SEC: '2', WSGATE_EXPIRY_SWEEP_MS: '100', WSGATE_JWT_CLOCK_TOLERANCE_SEC: '0' });
  });
  afterAll(() => gw.stop());

  it('token:expiring -> getToken -> token:refresh, again and again: the session outlives every token, never a 4007', async () => {
    // Each token lives 3 s and is announced as expiring 2 s before: a refresh about every second.
    const tokens = tokenSource(() => hs({ sub: 'steady', exp: now() + 3 }));
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    const first = await c.ready();
    await c.join('chat/1');
    await until(() => rec['token:refreshed'].length >= 3 && now() > first.exp + 1, 10_000);
    expect(rec['token:expiring'].length).toBeGreaterThanOrEqual(3);
    expect(states(rec)).toEqual(['connected']); // the socket never ended
    expect(c.session!.exp).toBe(rec['token:refreshed'].at(-1)!.exp);
    expect(c.session!.exp).toBeGreaterThan(first.exp);
    // one getToken per connect and per refresh (the last may still be on its way)
    expect(tokens.calls - 1 - rec['token:refreshed'].length).toBeOneOf([0, 1]);
    expect(rec.error).toEqual([]);
    expect(c.rooms).toEqual(['chat/1']);
    expect((await c.ping()).ts).toBeTypeOf('number');
  });

  it('a getToken that renews too late: TOKEN_NOT_RENEWED until exp, 4007, and the expired token is never offered again', async () => {
    const exp = now() + 3;
    const first = hs({ sub: 'late', exp });
    // The same token until a little after it has expired, then fresh ones (a cache that renews late).
    const tokens = tokenSource(() => (Date.now() < exp * 1000 + 600 ? first : hs({ sub: 'late' })));
    const refusedBefore = gw.metrics.refusals.get('AUTH_FAILED') ?? 0;
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    await c.join('chat/late');
    await until(() => states(rec).length > 2 && c.state === 'connected', 10_000);
    expect(rec.state[1]).toMatchObject({ state: 'reconnecting', code: 4007, reason: 'Token expired' });
    expect(new Set(states(rec).slice(1, -1))).toEqual(new Set(['reconnecting']));
    expect(new Set(rec.error.map((e) => e.code))).toEqual(new Set(['TOKEN_NOT_RENEWED']));
    expect((gw.metrics.refusals.get('AUTH_FAILED') ?? 0) - refusedBefore).toBe(0); // the expired token never reached an upgrade
    expect(c.session!.exp).toBeGreaterThan(exp);
    expect(c.rooms).toEqual(['chat/late']);
  });

  it('token:refreshed.left: rooms the new token does not allow are forgotten, and not joined again after a reconnect', async () => {
    const proxy = await startTcpProxy(gw.port);
    const tokens = tokenSource((call) => (call === 1 ? hs({ sub: 'shrinking', exp: now() + 3 }) : hs({ sub: 'shrinking', permissions: ['*:chat/*'] })));
    const c = client(proxy.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    await c.join(['chat/1', 'ops/1']);
    const refreshed = await seen(rec, 'token:refreshed');
    expect(refreshed.left).toEqual(['ops/1']);
    expect(c.rooms).toEqual(['chat/1']);
    expect(c.session!.permissions).toEqual(['*:chat/*']);
    proxy.cut();
    await until(() => states(rec).join() === 'connected,reconnecting,connected');
    expect(rec.state[1]).toMatchObject({ code: 1006 });
    expect(c.rooms).toEqual(['chat/1']);
    expect(rec.error).toEqual([]); // ops/1 was not tried (it would fail with REJOIN_FAILED)
    const peer = client(gw.url, () => hs({ sub: 'peer' }));
    await peer.publish('chat/1', 'after');
    await seen(rec, 'message', (m) => m.data === 'after');
    await proxy.close();
  });

  it('USER_MISMATCH on refresh (getToken switched users) is reported; the session stays', async () => {
    const tokens = tokenSource((call) => hs({ sub: call === 1 ? 'carol' : 'dave', exp: now() + (call === 1 ? 3 : 3600) }));
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    const e = await seen(rec, 'error');
    expect(e).toMatchObject({ code: 'USER_MISMATCH', message: 'User mismatch', request: 'token:refresh' });
    expect(c.state).toBe('connected');
    expect((await c.ping()).ts).toBeTypeOf('number');
    expect(c.session!.user).toBe('carol');
  });

  it('revocation: a refresh with a revoked token gets INVALID_TOKEN and close 4006; getToken gives it again: the client stops', async () => {
    const revoked = `revoked-${now()}-a`;
    await gw.revocations.revoke(revoked, 60);
    const accepted = gw.metrics.upgradesAccepted;
    const bad = hs({ sub: 'erin', jti: revoked });
    const tokens = tokenSource((call) => (call === 1 ? hs({ sub: 'erin', exp: now() + 3 }) : bad));
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    await until(() => c.state === 'closed');
    expect(rec.error.map((e) => e.code)).toEqual(['INVALID_TOKEN']);
    expect(states(rec)).toEqual(['connected', 'reconnecting', 'closed']);
    expect(rec.state[1]).toMatchObject({ code: 4006, reason: 'Invalid token' });
    expect(rec.state[2]).toMatchObject({ code: 4006, error: { code: 'CLOSED', closeCode: 4006 } });
    expect(tokens.tokens).toEqual([tokens.tokens[0], bad, bad]); // connect, refresh, the reconnect's check
    expect(gw.metrics.upgradesAccepted - accepted).toBe(1); // it never tried the refused token at an upgrade
  });

  it('revocation: ... and when getToken gives a different token, the client reconnects once and joins its rooms again', async () => {
    const revoked = `revoked-${now()}-b`;
    await gw.revocations.revoke(revoked, 60);
    const tokens = tokenSource((call) => hs({ sub: 'frank', ...(call === 1 ? { exp: now() + 3 } : call === 2 ? { jti: revoked } : {}) }));
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await c.ready();
    await c.join('chat/7');
    await until(() => states(rec).join() === 'connected,reconnecting,connected');
    expect(rec.state[1]).toMatchObject({ code: 4006 });
    expect(tokens.calls).toBe(3);
    expect(c.rooms).toEqual(['chat/7']);
    const peer = client(gw.url, () => hs({ sub: 'peer' }));
    await peer.publish('chat/7', 'still here');
    await seen(rec, 'message', (m) => m.data === 'still here');
  });

  it('an HTTP 401 at the upgrade is not retried with the same token (Node reads the refusal)', async () => {
    const before = gw.metrics.refusals.get('AUTH_FAILED') ?? 0;
    const forged = hs({ sub: 'mallory' }, 'another-secret-0123456789abcdefghijklmnop');
    const tokens = tokenSource(() => forged);
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await expect(c.ready()).rejects.toMatchObject({ code: 'CLOSED', closeCode: 4002 });
    expect(rec.error).toHaveLength(1);
    expect(rec.error[0]).toMatchObject({ code: 'REFUSED', refusal: { status: 401, code: 'AUTH_FAILED', error: 'Authentication failed' } });
    expect(states(rec)).toEqual(['reconnecting', 'closed']);
    expect(tokens.calls).toBe(2);
    expect((gw.metrics.refusals.get('AUTH_FAILED') ?? 0) - before).toBe(1);
  });

  it('a different token after a 401 gets one more upgrade, never a loop', async () => {
    const before = gw.metrics.refusals.get('AUTH_FAILED') ?? 0;
    const tokens = tokenSource(() => hs({ sub: 'mallory' }, 'another-secret-0123456789abcdefghijklmnop'));
    const c = client(gw.url, tokens.getToken);
    const rec = record(c);
    await expect(c.ready()).rejects.toMatchObject({ code: 'CLOSED' });
    expect(rec.error.map((e) => e.code)).toEqual(['REFUSED', 'REFUSED']);
    expect(tokens.calls).toBe(2);
    expect((gw.metrics.refusals.get('AUTH_FAILED') ?? 0) - before).toBe(2);
  });
});
