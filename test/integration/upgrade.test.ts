// The seed's handshake branches at the upgrade, with real WebSocket clients over real sockets.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, open, refused } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs, now, OLD_SECRET, SECRET, rsaKeys, signWith } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let redis: TestRedis;
let gw: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_JWT_SECRET: `${SECRET},${OLD_SECRET}`, WSGATE_JWT_ALGORITHMS: 'HS256,RS256', WSGATE_TOKEN_EXPIRING_SEC: '0' });
});
afterAll(async () => {
  await gw.stop();
  await redis.stop();
});

describe('Token Valid', () => {
  it('accepts a valid token and sends a connected frame with the user context (msgpack by default)', async () => {
    const exp = now() + 600;
    const { client, connected } = await connect(gw.url, hs({ sub: 'alice', tenant_id: 'acme', exp, permissions: ['join:chat/*'] }));
    expect(client.ws.protocol).toBe('');
    expect(connected.__binary).toBe(true);
    expect(connected).toMatchObject({ type: 'connected', user: 'alice', tenant: 'acme', exp, permissions: ['join:chat/*'], node: gw.config.nodeId, protocol: 'wsgate.v1.msgpack' });
    expect(typeof connected.connectionId).toBe('string');
    await client.close();
  });

  it('speaks JSON when the client asks for wsgate.v1.json', async () => {
    const { client, connected } = await connect(gw.url, hs(), { json: true });
    expect(client.ws.protocol).toBe('wsgate.v1.json');
    expect(connected.__binary).toBe(false);
    expect(connected.type).toBe('connected');
    await client.close();
  });

  it('accepts a token signed with an older secret (rotation)', async () => {
    const { client } = await connect(gw.url, hs({}, OLD_SECRET));
    await client.close();
  });

  it('accepts a token just under the 16 KiB token limit on either build (upstream uWS alone refused request headers past 4 KiB with 431)', async () => {
    // hundreds of permissions: what a tenant with fine-grained rooms may really send
    const permissions = Array.from({ length: 1000 }, (_, i) => `join:team-${i}/*`);
    let n = permissions.length;
    let token = hs({ permissions });
    while (token.length > 16_000) token = hs({ permissions: permissions.slice(0, (n -= Math.max(1, Math.floor((token.length - 16_000) / 30)))) });
    expect(token.length).toBeGreaterThan(15_900);
    const { client, connected } = await connect(gw.url, token, { headers: { authorization: `Bearer ${token}`, 'x-padding': 'p'.repeat(1500) } });
    expect((connected.permissions as string[]).length).toBe(n);
    expect(n).toBeGreaterThan(400);
    expect(gw.uws.maxHeaderBytes).toBe(20_480);
    await client.close();
  });

  it('treats permissions as optional (empty list)', async () => {
    const { client, connected } = await connect(gw.url, hs({ permissions: undefined }));
    expect(connected.permissions).toEqual([]);
    await client.close();
  });
});

describe('Token Invalid: refused with the seed messages, nothing registered', () => {
  // Every refused token carries sub 'refused' (where it has a sub): none may reach the registry.
  const cases: Array<[string, () => string | undefined, number, string, string]> = [
    ['missing token', () => undefined, 401, 'No token provided', 'NO_TOKEN'],
    ['bad signature', () => hs({ sub: 'refused' }, 'another-secret-that-is-long-enough-0123456789'), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['algorithm not allowed (HS384)', () => hs({ sub: 'refused' }, SECRET, 'HS384'), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['RS256 token with no public key configured', () => signWith(rsaKeys().privateKey, 'RS256', { sub: 'refused' }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['expired', () => hs({ sub: 'refused', exp: now() - 60 }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['nbf in the future', () => hs({ sub: 'refused', nbf: now() + 600 }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['missing jti', () => hs({ sub: 'refused', jti: undefined }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['missing tenant_id', () => hs({ sub: 'refused', tenant_id: undefined }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['missing sub', () => hs({ sub: undefined }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['missing exp', () => hs({ sub: 'refused', exp: undefined }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['permissions not an array of strings', () => hs({ sub: 'refused', permissions: 'admin' }), 401, 'Authentication failed', 'AUTH_FAILED'],
    ['garbage', () => 'not.a.jwt', 401, 'Authentication failed', 'AUTH_FAILED'],
  ];
  for (const [name, token, status, error, code] of cases) {
    it(name, async () => {
      const r = await refused(connect(gw.url, token()));
      expect(r.status).toBe(status);
      expect(r.body).toEqual({ error, code });
      expect(r.headers['content-type']).toBe('application/json');
    });
  }

  it('revoked: revoked:<jti> in Redis refuses with Token revoked', async () => {
    const jti = `rev-${Date.now()}`;
    await redis.client.set(`revoked:${jti}`, '1', 'EX', 60);
    // mirror mode (the default): the write reaches the node as an invalidation message, a moment
    // after SET answers (docs/REDIS.md); an upgrade in between would still pass
    await until(() => gw.revocations.isRevokedNow(jti) === true);
    const r = await refused(connect(gw.url, hs({ sub: 'refused', jti })));
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'Token revoked', code: 'TOKEN_REVOKED' });
  });

  it('counts the failure reasons in metrics, never in the response', async () => {
    const text = await (await fetch(`${gw.http}/metrics`)).text();
    expect(text).toMatch(/wsgate_auth_failures_total\{reason="expired"\} [1-9]/);
    expect(text).toMatch(/wsgate_auth_failures_total\{reason="not-yet-valid"\} [1-9]/);
    expect(text).toMatch(/wsgate_upgrades_refused_total\{code="TOKEN_REVOKED"\} [1-9]/);
  });

  it('registers none of the refused connections (and does register an accepted one)', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'kept' }));
    await until(() => gw.hub.size === 1); // the earlier tests' sockets are closed server-side too
    // flush() joins a flush the timer may have started before this connection: the second one carries it
    await gw.hub.registry.flush();
    await gw.hub.registry.flush();
    const users = (await gw.registryStore.list()).filter((e) => e.nodeId === gw.config.nodeId).map((e) => e.userId);
    expect(users).toContain('kept');
    expect(users).not.toContain('refused');
    expect(gw.hub.size).toBe(1);
    await client.close();
  });
});

describe('token transports', () => {
  it('Sec-WebSocket-Protocol bearer.<token> next to the real subprotocol, never echoed back', async () => {
    const { client, connected } = await connect(gw.url, undefined, { protocols: ['wsgate.v1.json', `bearer.${hs({ sub: 'bob' })}`], headers: {} });
    expect(client.ws.protocol).toBe('wsgate.v1.json');
    expect(connected.user).toBe('bob');
    await client.close();
  });

  it('bearer.<token> alone selects msgpack and echoes no subprotocol (RFC 6455 allows none)', async () => {
    // The ws package fails a handshake without a subprotocol when it offered some, so this
    // one is checked on the raw HTTP upgrade.
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request(`${gw.http}/ws`, {
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': `bearer.${hs({ sub: 'carol' })}` },
      });
      req.on('upgrade', (r, socket) => {
        socket.destroy();
        resolve(r);
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBeUndefined();
  });

  it('access_token query parameter', async () => {
    const { client, connected } = await connect(gw.url, undefined, { query: `access_token=${hs({ sub: 'dave' })}` });
    expect(connected.user).toBe('dave');
    await client.close();
  });

  it('cookie without an Origin (non-browser client)', async () => {
    const { client, connected } = await connect(gw.url, undefined, { headers: { cookie: `other=1; wsgate_token=${hs({ sub: 'erin' })}` } });
    expect(connected.user).toBe('erin');
    await client.close();
  });

  it('cookie from a cross-site Origin is refused by default (CSWSH)', async () => {
    const r = await refused(connect(gw.url, undefined, { headers: { cookie: `wsgate_token=${hs()}`, origin: 'https://evil.example' } }));
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('ORIGIN_FORBIDDEN');
  });

  it('two transports that disagree are refused', async () => {
    const r = await refused(connect(gw.url, undefined, { headers: { authorization: `Bearer ${hs({ sub: 'a' })}` }, query: `access_token=${hs({ sub: 'b' })}` }));
    expect(r.body).toEqual({ error: 'Authentication failed', code: 'AUTH_FAILED' });
  });

  it('an offer of foreign subprotocols only is refused (400)', async () => {
    const r = await refused(connect(gw.url, hs(), { protocols: ['mqtt'] }));
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('BAD_SUBPROTOCOL');
  });
});

describe('query transport disabled, close mode', () => {
  let g2: TestGateway;
  beforeAll(async () => {
    g2 = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_TOKEN_QUERY: 'false', WSGATE_REFUSAL_MODE: 'close' });
  });
  afterAll(() => g2.stop());

  it('ignores access_token when disabled and closes with 4001 No token provided', async () => {
    const c = await open(g2.url, { query: `access_token=${hs()}` });
    expect(await c.closed).toEqual({ code: 4001, reason: 'No token provided' });
  });

  it('close mode: bad token -> 4002 Authentication failed', async () => {
    const c = await open(g2.url, { token: hs({ exp: now() - 100 }) });
    expect(await c.closed).toEqual({ code: 4002, reason: 'Authentication failed' });
  });

  it('close mode: revoked -> 4003 Token revoked', async () => {
    await redis.client.set('revoked:close-mode', '1', 'EX', 60);
    const c = await open(g2.url, { token: hs({ jti: 'close-mode' }) });
    expect(await c.closed).toEqual({ code: 4003, reason: 'Token revoked' });
  });

  it('close mode echoes our subprotocol, so a client that offered one (every browser) reads the close code', async () => {
    for (const protocols of [['wsgate.v1.json', `bearer.${hs({ exp: now() - 100 })}`], ['wsgate.v1.msgpack', `bearer.${hs({ exp: now() - 100 })}`]]) {
      const c = await open(g2.url, { protocols, headers: {} });
      expect(c.ws.protocol).toBe(protocols[0]);
      expect(await c.closed).toEqual({ code: 4002, reason: 'Authentication failed' });
    }
  });
});

describe('refusals in the log', () => {
  const refusalLines = (): Array<Record<string, unknown>> => gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'upgrade refused');

  it('name the code, reason, address and token transport: query and cookie tokens too, and never the token', async () => {
    const bad = hs({ sub: 'refused', exp: now() - 60 });
    // sampled at 10 a second: other tests may have used this second's lines up
    await until(async () => {
      await refused(connect(gw.url, bad, { query: `access_token=${bad}` }));
      return refusalLines().at(-1)?.source === 'query';
    }, 5000, 100);
    expect(refusalLines().at(-1)).toMatchObject({ code: 'AUTH_FAILED', status: 401, reason: 'expired', source: 'query', address: '127.0.0.1', node: gw.config.nodeId });
    expect(gw.logs.join('\n')).not.toContain(bad.split('.')[2]!);
  });

  it('are sampled: a flood of refusals writes at most 10 lines a second, and the next line counts the ones left out', async () => {
    const before = refusalLines().length;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 200 }, () => refused(connect(gw.url, undefined))));
    const seconds = (Date.now() - t0) / 1000;
    expect(refusalLines().length - before).toBeLessThanOrEqual(10 * (Math.ceil(seconds) + 1));
    // one more refusal at a time until a new one-second window logs it with the count left out
    const flagged = (): Record<string, unknown> | undefined => refusalLines().slice(before).find((l) => typeof l.suppressed === 'number');
    await until(async () => {
      await refused(connect(gw.url, undefined));
      return flagged() !== undefined;
    }, 5000, 100);
    expect(flagged()).toMatchObject({ code: 'NO_TOKEN', reason: 'no-token', source: 'none' });
    expect(flagged()!.suppressed).toBeGreaterThanOrEqual(200 - 10 * (Math.ceil(seconds) + 1));
  });

  it('never contain a token (this file sends them in headers, subprotocols, queries and cookies)', () => {
    expect(gw.logs.join('\n')).not.toMatch(/eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]*/);
  });
});

describe('HTTP endpoints', () => {
  it('GET /healthz tells the uWS build and node id', async () => {
    const res = await fetch(`${gw.http}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { uws: { build: string; version: string }; node: string };
    expect(['upstream', 'compat']).toContain(body.uws.build);
    expect(body.uws.version).toMatch(/^20\./);
    expect(body.node).toBe(gw.config.nodeId);
  });

  it('GET /readyz is 200 while Redis answers', async () => {
    const res = await fetch(`${gw.http}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true, reasons: [] });
  });

  it('unknown paths are a JSON 404', async () => {
    const res = await fetch(`${gw.http}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'Not found', code: 'NOT_FOUND' });
  });
});

describe('HEAD probes', () => {
  it('HEAD /healthz and /readyz answer the status without a body', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`${gw.http}${path}`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    }
  });
});
