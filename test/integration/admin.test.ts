// The server API (docs/API.md) against real gateways: two nodes on one real redis-server, real
// sockets, real HTTP. Authentication (keys, rotation, API JWTs, client tokens refused), rate limits,
// validation, containment, and each route's reach over both nodes; revoking a user (every socket of
// the user on every node closed within 1 s with 4003, older tokens refused at the upgrade).
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs, hsIat, now, SECRET } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const KEY1 = 'key-one-0123456789abcdefghijklmnopqrstuvwxyz';
const KEY2 = 'key-two-0123456789abcdefghijklmnopqrstuvwxyz';
const SCOPE = 'wsgate:admin';
const ADMIN = { WSGATE_ADMIN_PORT: '0', WSGATE_ADMIN_KEYS: `${KEY1},${KEY2}`, WSGATE_ADMIN_JWT_SCOPE: SCOPE, WSGATE_ADMIN_RATE_LIMIT: '0' };

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function api(g: TestGateway, method: string, path: string, body?: unknown, auth: string | null = KEY1): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${g.adminPort}${path}`, {
    method,
    headers: { ...(auth === null ? {} : { authorization: `Bearer ${auth}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const apiJwt = (claims: Record<string, unknown>, key = SECRET): string => createSigner({ key, algorithm: 'HS256', noTimestamp: true })({ exp: now() + 600, iat: now(), ...claims });

let redis: TestRedis;
let a: TestGateway;
let b: TestGateway;
const open: Client[] = [];
beforeAll(async () => {
  redis = await startRedis();
  const shared = { WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: 'admin:', ...ADMIN };
  [a, b] = await Promise.all([startGateway(shared), startGateway(shared)]);
  const ready = (g: TestGateway): boolean => g.metrics.gauges().revocation_mirror_ready === 1;
  // both nodes mirror revocations and have written their registry heartbeat
  await until(async () => ready(a) && ready(b) && (await a.registryStore.liveNodes()).length === 2);
});
afterAll(async () => {
  for (const c of open) c.ws.terminate();
  await Promise.all([a.stop(), b.stop()]);
  await redis.stop();
});

async function client(g: TestGateway, token: string, json = true): Promise<{ client: Client; id: string }> {
  const { client, connected } = await connect(g.url, token, { json });
  open.push(client);
  return { client, id: connected.connectionId as string };
}

describe('server API: authentication', () => {
  it('answers every route only with a key or an API JWT; both keys work (rotation)', async () => {
    expect(await api(a, 'GET', '/v1/nodes', undefined, null)).toMatchObject({ status: 401, body: { error: 'No token provided', code: 'NO_TOKEN' } });
    const wrong = await api(a, 'GET', '/v1/nodes', undefined, 'x'.repeat(44));
    expect(wrong).toMatchObject({ status: 401, body: { error: 'Authentication failed', code: 'AUTH_FAILED' } });
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    expect((await api(a, 'GET', '/v1/nodes', undefined, KEY1)).status).toBe(200);
    expect((await api(a, 'GET', '/v1/nodes', undefined, KEY2)).status).toBe(200);
    expect((await api(a, 'GET', '/v1/nodes', undefined, KEY1.slice(0, -1))).status).toBe(401); // a prefix of a key is not the key
    expect((await api(a, 'GET', '/v1/nodes', undefined, `${KEY1}x`)).status).toBe(401);
    const res = await fetch(`http://127.0.0.1:${a.adminPort}/v1/nodes`, { headers: { authorization: `Basic ${KEY1}` } });
    expect(res.status).toBe(401);
  });

  it('a JWT passes with the scope and without tenant_id; client tokens never pass, whatever they carry', async () => {
    expect((await api(a, 'GET', '/v1/nodes', undefined, apiJwt({ sub: 'ops', scope: `read ${SCOPE}` }))).status).toBe(200);
    expect((await api(a, 'GET', '/v1/nodes', undefined, apiJwt({ sub: 'ops', scp: [SCOPE] }))).status).toBe(200);
    const refusedTokens = [
      apiJwt({ sub: 'ops', scope: 'read' }), // no admin scope
      apiJwt({ sub: 'ops', scope: `${SCOPE}x` }), // not the same value
      apiJwt({ sub: 'ops', scope: SCOPE, tenant_id: 'acme' }), // a tenant: a client token
      apiJwt({ sub: 'ops', scope: SCOPE, exp: now() - 60 }), // expired
      apiJwt({ sub: 'ops', scope: SCOPE }, 'another-secret-0123456789abcdefghijklmnop'), // not our key
      hs({ sub: 'alice', scope: SCOPE }), // a client token with the scope claim
      hs({ sub: 'alice' }), // a plain client token
    ];
    for (const t of refusedTokens) expect(await api(a, 'GET', '/v1/nodes', undefined, t), t).toMatchObject({ status: 401, body: { code: 'AUTH_FAILED' } });
    expect(a.metrics.authFailures.get('admin-jwt-claims')).toBeGreaterThan(0);
  });

  it('is a listener of its own: the API is not on the client port, /ws and /healthz are not on the API port', async () => {
    const onClientPort = await fetch(`${a.http}/v1/nodes`, { headers: { authorization: `Bearer ${KEY1}` } });
    expect(onClientPort.status).toBe(404);
    expect(await onClientPort.json()).toEqual({ error: 'Not found', code: 'NOT_FOUND' });
    expect((await api(a, 'GET', '/ws')).body).toEqual({ error: 'Not found', code: 'NOT_FOUND' });
    expect((await api(a, 'GET', '/healthz')).status).toBe(404);
    expect(a.adminPort).not.toBe(a.port);
  });
});

describe('server API: what it serves besides the API', () => {
  it('GET and HEAD /metrics without the API\'s keys (a scraper needs no credential that can revoke), the text the client port serves', async () => {
    const res = await fetch(`http://127.0.0.1:${a.adminPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE wsgate_connections gauge');
    const head = await fetch(`http://127.0.0.1:${a.adminPort}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toContain('text/plain');
  });

  it('a POST without a valid credential is answered 401 before its body has arrived (and its connection closed)', async () => {
    const { createConnection } = await import('node:net');
    const sock = createConnection({ host: '127.0.0.1', port: a.adminPort! });
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.write(`POST /v1/users/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-key-0123456789abcdefghijklmnopqrstuvwxyz\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"tenant":`);
    await closed; // never sent the rest of the body
    expect(Buffer.concat(got).toString('latin1')).toMatch(/^HTTP\/1\.1 401 /);
  });
});

describe('server API: validation and containment', () => {
  it('refuses every malformed input with a typed 400, and other methods and paths', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', '/v1/rooms/publish', 'not json', 400, 'BAD_REQUEST'],
      ['POST', '/v1/rooms/publish', '[1,2]', 400, 'BAD_REQUEST'],
      ['POST', '/v1/rooms/publish', '', 400, 'BAD_REQUEST'],
      ['POST', '/v1/rooms/publish', { tenant: 'acme', room: 'chat', data: 1, extra: true }, 400, 'BAD_REQUEST'],
      ['POST', '/v1/rooms/publish', { tenant: 'acme', room: 'chat' }, 400, 'BAD_REQUEST'],
      ['POST', '/v1/rooms/publish', { tenant: '', room: 'chat', data: 1 }, 400, 'BAD_TENANT'],
      ['POST', '/v1/rooms/publish', { tenant: 'a\u0000b', room: 'chat', data: 1 }, 400, 'BAD_TENANT'],
      ['POST', '/v1/rooms/publish', { tenant: 'acme', room: 'chat/*', data: 1 }, 400, 'BAD_ROOM'],
      ['POST', '/v1/rooms/publish', { tenant: 'acme', room: 7, data: 1 }, 400, 'BAD_ROOM'],
      ['POST', '/v1/rooms/publish', { tenant: 'acme', room: 'chat', data: 1, from: 5 }, 400, 'BAD_FROM'],
      ['POST', '/v1/rooms/publish', `{"tenant":"acme","room":"chat","data":${'['.repeat(40)}${']'.repeat(40)}}`, 400, 'BAD_REQUEST'],
      ['GET', '/v1/rooms/presence?tenant=acme', undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/rooms/presence?tenant=acme&room=a%20b', undefined, 400, 'BAD_ROOM'],
      ['GET', '/v1/rooms/presence?tenant=acme&room=chat&room=chat', undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/rooms/presence?tenant=acme&room=chat&__proto__=x', undefined, 400, 'BAD_REQUEST'],
      // malformed escapes and bytes that are not UTF-8 (URLSearchParams would pass '%ZZ' and U+FFFD on; red team)
      ['GET', '/v1/connections/counts?tenant=%ZZ', undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/connections/counts?tenant=%E0%A4', undefined, 400, 'BAD_REQUEST'],
      ['GET', '/v1/connections/counts?tenant=acme%', undefined, 400, 'BAD_REQUEST'],
      ['POST', '/v1/connections/disconnect', { connection: '' }, 400, 'BAD_CONNECTION'],
      ['POST', '/v1/connections/disconnect', { connection: 'n.1', reconnect: 'yes' }, 400, 'BAD_REQUEST'],
      ['POST', '/v1/users/disconnect', { tenant: 'acme', user: 'x'.repeat(257) }, 400, 'BAD_USER'],
      ['POST', '/v1/tokens/revoke', { jti: ['j'] }, 400, 'BAD_JTI'],
      ['POST', '/v1/tokens/revoke', { jti: 'j', ttlSec: 0 }, 400, 'BAD_TTL'],
      ['POST', '/v1/users/revoke', { tenant: 'acme', user: 'u', ttlSec: 1.5 }, 400, 'BAD_TTL'],
      ['POST', '/v1/users/revoke', { tenant: 'acme', user: 'u', ttlSec: 31_536_001 }, 400, 'BAD_TTL'],
      ['GET', '/v1/connections/counts?tenant=', undefined, 400, 'BAD_TENANT'],
      ['GET', '/v1/nodes?x=1', undefined, 400, 'BAD_REQUEST'],
      ['DELETE', '/v1/nodes', undefined, 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/v1/rooms/publish', undefined, 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/v1/nope', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await api(a, method, path, body);
      expect({ status: r.status, code: r.body.code }, `${method} ${path} ${JSON.stringify(body)}`).toEqual({ status, code });
      expect(Object.keys(r.body).sort()).toEqual(['code', 'error']);
    }
  });

  it('bounds bodies: over the route\'s size is 413 (declared or streamed), before it is parsed', async () => {
    const big = JSON.stringify({ tenant: 'acme', room: 'chat', data: 'x'.repeat(20_000) });
    expect((await api(a, 'POST', '/v1/rooms/publish', big)).body).toEqual({ error: 'Payload too large', code: 'PAYLOAD_TOO_LARGE' });
    expect((await api(a, 'POST', '/v1/users/revoke', { tenant: 'acme', user: 'u', pad: 'x'.repeat(5000) })).status).toBe(413);
    // no content-length: chunked, counted as it arrives
    const stream = new ReadableStream({ start(c) { for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode('x'.repeat(1000))); c.close(); } });
    const res = await fetch(`http://127.0.0.1:${a.adminPort}/v1/users/revoke`, { method: 'POST', body: stream, duplex: 'half', headers: { authorization: `Bearer ${KEY1}` } } as RequestInit);
    expect(res.status).toBe(413);
    // a publish of the largest allowed size passes
    const fits = { tenant: 'acme', room: 'chat', data: 'x'.repeat(16_000) };
    expect((await api(a, 'POST', '/v1/rooms/publish', fits)).status).toBe(200);
  });

  it('a failure inside a route answers 500 { error, code }, is counted, and the API keeps serving', async () => {
    const g = await startGateway({ ...ADMIN });
    try {
      g.hub.command = () => Promise.reject(new Error('boom'));
      expect(await api(g, 'GET', '/v1/nodes')).toMatchObject({ status: 500, body: { error: 'Internal error', code: 'INTERNAL' } });
      expect(g.metrics.internalErrors.get('admin')).toBe(1);
      g.hub.command = () => { throw new Error('boom, synchronously'); };
      expect((await api(g, 'POST', '/v1/users/disconnect', { tenant: 'acme', user: 'u' })).status).toBe(500);
      expect((await api(g, 'GET', '/v1/rooms/presence?tenant=acme&room=chat')).status).toBe(200);
      expect(g.metrics.adminRequests.get('INTERNAL')).toBe(2);
    } finally {
      await g.stop();
    }
  });
});

describe('server API: rate limits', () => {
  it('limits each principal to its bucket (429 with Retry-After), and failed authentications per address', async () => {
    const g = await startGateway({ ...ADMIN, WSGATE_ADMIN_RATE_LIMIT: '1', WSGATE_ADMIN_RATE_BURST: '3' });
    try {
      const statuses = async (n: number, key: string | null): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push((await api(g, 'GET', '/v1/nodes', undefined, key)).status);
        return out;
      };
      expect(await statuses(4, KEY1)).toEqual([200, 200, 200, 429]);
      const limited = await api(g, 'GET', '/v1/nodes', undefined, KEY1);
      expect(limited.body).toEqual({ error: 'Rate limit exceeded', code: 'RATE_LIMITED' });
      expect(limited.headers.get('retry-after')).toBe('1');
      expect(await statuses(1, KEY2)).toEqual([200]); // another key has its own bucket
      expect(await statuses(1, apiJwt({ sub: 'ops', scope: SCOPE }))).toEqual([200]);
      // guessing: three failures, then 429 before any verification, for every credential from this address
      expect(await statuses(4, 'y'.repeat(40))).toEqual([401, 401, 401, 429]);
      expect(await statuses(1, KEY2)).toEqual([429]);
      await until(async () => (await api(g, 'GET', '/v1/nodes', undefined, KEY2)).status === 200, 5000, 250);
    } finally {
      await g.stop();
    }
  });
});

describe('server API: rooms', () => {
  it('publish reaches the room\'s members on every node, in both encodings; `from` is empty unless given', async () => {
    const onA = (await client(a, hs({ sub: 'm1' }), true)).client;
    const onB = (await client(b, hs({ sub: 'm2' }), false)).client;
    const otherTenant = (await client(b, hs({ sub: 'm3', tenant_id: 'globex' }))).client;
    for (const c of [onA, onB, otherTenant]) expect((await c.request({ type: 'join', rooms: ['news'] })).type).toBe('ack');
    const r = await api(b, 'POST', '/v1/rooms/publish', { tenant: 'acme', room: 'news', data: { headline: 'hi' } });
    expect(r).toMatchObject({ status: 200, body: { tenant: 'acme', room: 'news' } });
    for (const c of [onA, onB]) expect(await c.type('message')).toMatchObject({ type: 'message', room: 'news', data: { headline: 'hi' }, from: '', ts: r.body.ts });
    expect(await otherTenant.none((m) => m.type === 'message')).toBe(true);
    await api(a, 'POST', '/v1/rooms/publish', { tenant: 'acme', room: 'news', data: [1, null, 'x'], from: 'newsroom' });
    expect(await onB.type('message')).toMatchObject({ data: [1, null, 'x'], from: 'newsroom' });
  });

  it('presence lists the room\'s users over every node', async () => {
    const x = (await client(a, hs({ sub: 'p1' }))).client;
    const y = (await client(b, hs({ sub: 'p2' }))).client;
    for (const c of [x, y]) await c.request({ type: 'join', rooms: ['lobby/1'] });
    await until(async () => ((await api(a, 'GET', '/v1/rooms/presence?tenant=acme&room=lobby%2F1')).body.users as string[]).length === 2);
    expect((await api(b, 'GET', '/v1/rooms/presence?tenant=acme&room=lobby/1')).body).toEqual({ tenant: 'acme', room: 'lobby/1', users: ['p1', 'p2'] });
    expect((await api(b, 'GET', '/v1/rooms/presence?tenant=globex&room=lobby/1')).body).toEqual({ tenant: 'globex', room: 'lobby/1', users: [] });
  });
});

describe('server API: connections', () => {
  it('disconnect closes one connection by id on whichever node has it (4009, or 4509 with reconnect)', async () => {
    const x = await client(b, hs({ sub: 'd1' }));
    const y = await client(b, hs({ sub: 'd1' }));
    const r = await api(a, 'POST', '/v1/connections/disconnect', { connection: x.id });
    expect(r.body).toMatchObject({ connection: x.id, closed: 1, nodes: { [a.config.nodeId]: 0, [b.config.nodeId]: 1 }, missing: [], complete: true });
    expect(await x.client.closed).toEqual({ code: 4009, reason: 'Disconnected by the server' });
    await api(a, 'POST', '/v1/connections/disconnect', { connection: y.id, reconnect: true });
    expect(await y.client.closed).toEqual({ code: 4509, reason: 'Reconnect requested' });
    expect((await api(a, 'POST', '/v1/connections/disconnect', { connection: 'nobody.1' })).body).toMatchObject({ closed: 0, complete: true });
  });

  it('disconnecting a user closes each of its sockets on every node; other users stay', async () => {
    const sockets = [await client(a, hs({ sub: 'd2' })), await client(b, hs({ sub: 'd2' })), await client(b, hs({ sub: 'd2' }))];
    const bystander = (await client(a, hs({ sub: 'd3' }))).client;
    const r = await api(b, 'POST', '/v1/users/disconnect', { tenant: 'acme', user: 'd2' });
    expect(r.body).toMatchObject({ tenant: 'acme', user: 'd2', closed: 3, nodes: { [a.config.nodeId]: 1, [b.config.nodeId]: 2 }, complete: true });
    for (const s of sockets) expect((await s.client.closed).code).toBe(4009);
    expect((await bystander.request({ type: 'ping' })).type).toBe('ack');
  });

  it('counts per node and per tenant, and the node list', async () => {
    const g1 = await client(a, hs({ sub: 'c1', tenant_id: 'counted' }));
    await client(b, hs({ sub: 'c2', tenant_id: 'counted' }));
    await client(b, hs({ sub: 'c3', tenant_id: 'counted' }));
    const one = await api(a, 'GET', '/v1/connections/counts?tenant=counted');
    expect(one.body).toEqual({ total: 3, nodes: { [a.config.nodeId]: 1, [b.config.nodeId]: 2 }, tenants: { counted: 3 }, truncated: false, missing: [], complete: true });
    const all = await api(b, 'GET', '/v1/connections/counts');
    expect(all.body.total).toBe(a.hub.size + b.hub.size);
    expect((all.body.tenants as Record<string, number>).counted).toBe(3);
    expect(Object.values(all.body.tenants as Record<string, number>).reduce((x, y) => x + y, 0)).toBe(all.body.total);
    const nodes = await api(a, 'GET', '/v1/nodes');
    expect(nodes.body).toMatchObject({ missing: [], complete: true });
    expect((nodes.body.nodes as Array<Record<string, unknown>>).map((n) => [n.id, n.connections, n.draining])).toEqual(
      [[a.config.nodeId, a.hub.size, false], [b.config.nodeId, b.hub.size, false]].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    await g1.client.close();
    await until(async () => (await api(a, 'GET', '/v1/connections/counts?tenant=counted')).body.total === 2);
  });

  it('a node that stopped without cleaning up is reported missing until its heartbeat expires; the answer comes after the lookup timeout', async () => {
    await a.registryStore.apply('ghost-node', { upserts: [], removals: [] });
    const t0 = Date.now();
    const r = await api(a, 'GET', '/v1/nodes');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(a.config.revocationTimeoutMs - 20);
    expect(r.body).toMatchObject({ missing: ['ghost-node'], complete: false });
    expect((r.body.nodes as unknown[]).length).toBe(2);
    await a.registryStore.removeNode('ghost-node');
  });
});

describe('server API: revocation', () => {
  it('revoking a token closes every socket carrying it on every node (4003) and refuses it at the upgrade', async () => {
    const token = hs({ sub: 'r1', jti: `api-jti-${Date.now()}` });
    const x = await client(a, token);
    const y = await client(b, token);
    const r = await api(a, 'POST', '/v1/tokens/revoke', { jti: JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti, ttlSec: 120 });
    expect(r.body).toMatchObject({ ttlSec: 120, closed: 2, complete: true });
    for (const c of [x, y]) expect(await c.client.closed).toEqual({ code: 4003, reason: 'Token revoked' });
    for (const g of [a, b]) expect((await refused(connect(g.url, token))).body).toEqual({ error: 'Token revoked', code: 'TOKEN_REVOKED' });
  });

  it('revoking a user closes every socket of the user on every node within 1 s (4003 Token revoked), refuses its older tokens and those without iat, and lets newer ones in', async () => {
    const user = `ru-${Date.now()}`;
    const older = hsIat({ sub: user, iat: now() - 30 });
    // hs: tokens without iat; hsIat: issued now
    const sockets = [await client(a, older), await client(a, hs({ sub: user })), await client(b, older, false), await client(b, hsIat({ sub: user }))];
    const otherUser = (await client(b, hsIat({ sub: `${user}-other`, iat: now() - 30 }))).client;
    const sameUserOtherTenant = (await client(a, hsIat({ sub: user, tenant_id: 'globex', iat: now() - 30 }))).client;
    const t0 = Date.now();
    const r = await api(b, 'POST', '/v1/users/revoke', { tenant: 'acme', user });
    const closed = await Promise.all(sockets.map(async (s) => ({ ...(await s.client.closed), ms: Date.now() - t0 })));
    for (const c of closed) {
      expect({ code: c.code, reason: c.reason }).toEqual({ code: 4003, reason: 'Token revoked' });
      expect(c.ms).toBeLessThan(1000);
    }
    console.log(`user revocation reached 4 sockets on 2 nodes in ${Math.max(...closed.map((c) => c.ms))} ms`);
    const before = r.body.revokedBefore as number;
    expect(r.body).toMatchObject({ tenant: 'acme', user, closed: 4, nodes: { [a.config.nodeId]: 2, [b.config.nodeId]: 2 }, complete: true, ttlSec: a.config.jwtMaxTtlSec + a.config.jwtClockToleranceSec });
    expect(before).toBe(Math.floor(t0 / 1000) + 1);
    for (const c of [otherUser, sameUserOtherTenant]) expect((await c.request({ type: 'ping' })).type).toBe('ack');
    // every node refuses the user's tokens issued before `before`, and those without iat
    for (const g of [a, b]) {
      for (const t of [older, hsIat({ sub: user, iat: before - 1 }), hs({ sub: user })]) {
        expect((await refused(connect(g.url, t))).body).toEqual({ error: 'Token revoked', code: 'TOKEN_REVOKED' });
      }
      const fresh = await client(g, hsIat({ sub: user, iat: before }));
      expect((await fresh.client.request({ type: 'ping' })).type).toBe('ack');
    }
  });

  it('a refresh to an older token of a revoked user is refused (INVALID_TOKEN, 4006)', async () => {
    const user = `rf-${Date.now()}`;
    const r = await api(a, 'POST', '/v1/users/revoke', { tenant: 'acme', user });
    const c = (await client(b, hsIat({ sub: user, iat: r.body.revokedBefore as number }))).client;
    expect(await c.request({ type: 'token:refresh', token: hsIat({ sub: user, iat: now() - 60 }) })).toMatchObject({ type: 'error', code: 'INVALID_TOKEN' });
    expect((await c.closed).code).toBe(4006);
  });

  it('the auth service revokes a user with a plain SET: every node closes the user\'s sockets (the mirror)', async () => {
    const user = `set-${Date.now()}`;
    const sockets = [await client(a, hsIat({ sub: user, iat: now() - 10 })), await client(b, hsIat({ sub: user, iat: now() - 10 }))];
    const t0 = Date.now();
    await redis.client.set(`revoked-user:${'acme'.length}:acme${user.length}:${user}`, String(now()), 'EX', 600);
    for (const s of sockets) expect(await s.client.closed).toEqual({ code: 4003, reason: 'Token revoked' });
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('server API when Redis is away', () => {
  it('a revocation that cannot be written, and presence, answer 503 UNAVAILABLE with Retry-After; counts answer with what this node knows, incomplete', async () => {
    const r2 = await startRedis();
    const g = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300', ...ADMIN });
    try {
      const s = await client(g, hsIat({ sub: 'away', iat: now() - 10 }));
      await r2.kill();
      const r = await api(g, 'POST', '/v1/users/revoke', { tenant: 'acme', user: 'away' });
      expect(r).toMatchObject({ status: 503, body: { error: 'Service unavailable', code: 'UNAVAILABLE' } });
      expect(r.headers.get('retry-after')).toBe('2');
      expect((await s.client.request({ type: 'ping' })).type).toBe('ack'); // nothing was closed
      expect((await api(g, 'GET', '/v1/rooms/presence?tenant=acme&room=chat')).status).toBe(503);
      const counts = await api(g, 'GET', '/v1/connections/counts');
      expect(counts.body).toMatchObject({ total: 1, nodes: { [g.config.nodeId]: 1 }, complete: false });
    } finally {
      await g.stop();
      await r2.stop();
    }
  });
});

describe('server API in the lookup revocation mode', () => {
  it('revoking a user still reaches open sockets (over the bus), and upgrades read both keys in one MGET', async () => {
    const g = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_MODE: 'lookup', ...ADMIN });
    try {
      const user = `lk-${Date.now()}`;
      const s = await client(g, hsIat({ sub: user, iat: now() - 10 }));
      const r = await api(g, 'POST', '/v1/users/revoke', { tenant: 'acme', user });
      expect(r.body).toMatchObject({ closed: 1 });
      expect((await s.client.closed).code).toBe(4003);
      const mgets = await redis.calls('mget');
      expect((await refused(connect(g.url, hsIat({ sub: user, iat: now() - 10 })))).body.code).toBe('TOKEN_REVOKED');
      expect(await redis.calls('mget')).toBe(mgets + 1);
      const fresh = (await client(g, hsIat({ sub: user, iat: r.body.revokedBefore as number }))).client;
      expect((await fresh.request({ type: 'ping' })).type).toBe('ack');
    } finally {
      await g.stop();
    }
  });
});
