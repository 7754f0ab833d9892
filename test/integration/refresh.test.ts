// token:refresh over the socket (the seed's "Token Refresh During Session") and enforced expiry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, connect } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs, now } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let redis: TestRedis;
let gw: TestGateway;
beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_TOKEN_EXPIRING_SEC: '2', WSGATE_EXPIRY_SWEEP_MS: '100', WSGATE_JWT_CLOCK_TOLERANCE_SEC: '0' });
});
afterAll(async () => {
  await gw.stop();
  await redis.stop();
});

const open = async (over: Record<string, unknown> = {}, json = false): Promise<Client> => (await connect(gw.url, hs(over), { json })).client;

describe('token:refresh', () => {
  it('success: new exp and permissions; rooms the new token no longer allows are left', async () => {
    const c = await open({ sub: 'alice', permissions: ['join:chat/*', 'join:ops/*', 'publish:**'] });
    const other = await open({ sub: 'bob' });
    await c.request({ type: 'join', rooms: ['chat/1', 'ops/1'] });
    const exp = now() + 7200;
    const r = await c.request({ type: 'token:refresh', token: hs({ sub: 'alice', exp, permissions: ['join:chat/*', 'publish:**'] }) });
    expect(r).toMatchObject({ type: 'token:refreshed', exp, permissions: ['join:chat/*', 'publish:**'], left: ['ops/1'] });
    await other.request({ type: 'publish', room: 'ops/1', data: 'secret' });
    await other.request({ type: 'publish', room: 'chat/1', data: 'hello' });
    expect((await c.type('message')).data).toBe('hello');
    expect(await c.none((m) => m.type === 'message' && m.data === 'secret')).toBe(true);
    // The new permissions govern the next requests, and the registry has the new exp.
    expect(await c.request({ type: 'join', rooms: ['ops/1'] })).toMatchObject({ code: 'FORBIDDEN' });
    await gw.hub.registry.flush();
    expect((await gw.registryStore.list()).some((e) => e.userId === 'alice' && e.exp === exp)).toBe(true);
    await Promise.all([c.close(), other.close()]);
  });

  it('another user\'s token: User mismatch, the connection stays open', async () => {
    const c = await open({ sub: 'alice' });
    expect(await c.request({ type: 'token:refresh', token: hs({ sub: 'mallory' }) })).toMatchObject({ type: 'error', code: 'USER_MISMATCH', message: 'User mismatch' });
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await c.close();
  });

  it('the same user in another tenant: refused the same way', async () => {
    const c = await open({ sub: 'alice', tenant_id: 'acme' });
    expect(await c.request({ type: 'token:refresh', token: hs({ sub: 'alice', tenant_id: 'evil' }) })).toMatchObject({ code: 'USER_MISMATCH' });
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await c.close();
  });

  for (const [name, token] of [
    ['revoked', () => hs({ sub: 'alice', jti: 'refresh-revoked' })],
    ['expired', () => hs({ sub: 'alice', exp: now() - 10 })],
    ['invalid signature', () => hs({ sub: 'alice' }, 'some-other-secret-0123456789-0123456789')],
    ['garbage', () => 'garbage'],
  ] as const) {
    it(`${name}: Invalid token, then closed with 4006`, async () => {
      await redis.client.set('revoked:refresh-revoked', '1', 'EX', 60);
      // the revocation mirror learns of the SET within milliseconds (docs/REDIS.md#revocation-mirror)
      await until(() => gw.revocations.isRevokedNow('refresh-revoked') === true);
      const c = await open({ sub: 'alice' }, true);
      expect(await c.request({ type: 'token:refresh', token: token() })).toMatchObject({ type: 'error', code: 'INVALID_TOKEN', message: 'Invalid token' });
      expect(await c.closed).toEqual({ code: 4006, reason: 'Invalid token' });
    });
  }
});

describe('expiry', () => {
  it('token:expiring before exp, then closed with 4007 Token expired at exp', async () => {
    const exp = now() + 3;
    const c = await open({ exp });
    const warn = await c.type('token:expiring', 4000);
    expect(warn).toMatchObject({ exp });
    expect(warn.in as number).toBeLessThanOrEqual(2);
    const closed = await c.closed;
    expect(closed).toEqual({ code: 4007, reason: 'Token expired' });
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(exp - 0.2);
  });

  it('a refresh before exp keeps the socket open past the old exp', async () => {
    const exp = now() + 3;
    const c = await open({ sub: 'keeper', exp });
    await c.type('token:expiring', 4000);
    expect((await c.request({ type: 'token:refresh', token: hs({ sub: 'keeper', exp: now() + 3600 }) })).type).toBe('token:refreshed');
    await new Promise((r) => setTimeout(r, (exp - now() + 1) * 1000));
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await c.close();
  });
});
