// The revocation mirror (WSGATE_REVOCATION_MODE=mirror, the default with Redis) against a real
// redis-server: upgrades decided without a round trip, a plain SET by the auth service closing open
// sockets on every node, and what happens when Redis restarts, flushes, dies or stalls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';
import { measureRevocationDelay } from '../../scripts/revocation-delay.js';

let redis: TestRedis;
let a: TestGateway;
let b: TestGateway;
beforeAll(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([startGateway({ WSGATE_REDIS_URL: redis.url }), startGateway({ WSGATE_REDIS_URL: redis.url })]);
  await until(() => ready(a) && ready(b));
});
afterAll(async () => {
  await Promise.all([a.stop(), b.stop()]);
  await redis.stop();
});

const ready = (g: TestGateway): boolean => g.metrics.gauges().revocation_mirror_ready === 1;

describe('revocation mirror', () => {
  it('decides upgrades without a Redis round trip, and refuses a token revoked before it connects', async () => {
    const gets0 = (await redis.calls('mget')) + (await redis.calls('get')) + (await redis.calls('exists'));
    const clients = await Promise.all(Array.from({ length: 200 }, async (_, i) => (await connect(a.url, hs({ sub: `m${i}` }))).client));
    await redis.client.set('revoked:before-connect', '1', 'EX', 60);
    await until(() => a.revocations.isRevokedNow('before-connect') === true);
    const r = await refused(connect(a.url, hs({ jti: 'before-connect' })));
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'Token revoked', code: 'TOKEN_REVOKED' });
    expect((await redis.calls('mget')) + (await redis.calls('get')) + (await redis.calls('exists')) - gets0).toBe(0);
    expect(a.metrics.upgradesAccepted).toBeGreaterThanOrEqual(200);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a plain SET revoked:<jti> by the auth service closes every open socket carrying it, on every node, with 4003 Token revoked', async () => {
    const jti = `shared-${Date.now()}`;
    const token = hs({ sub: 'carol', jti });
    const onA = (await connect(a.url, token)).client;
    const onA2 = (await connect(a.url, token)).client;
    const onB = (await connect(b.url, token)).client;
    const bystander = (await connect(a.url, hs({ sub: 'carol' }))).client; // same user, another token
    const t0 = Date.now();
    await redis.client.set(`revoked:${jti}`, '1', 'EX', 600);
    for (const c of [onA, onA2, onB]) expect(await c.closed).toEqual({ code: 4003, reason: 'Token revoked' });
    const delay = Date.now() - t0;
    expect((await bystander.request({ type: 'ping' })).type).toBe('ack');
    expect(a.metrics.revokedCloses).toBe(2);
    expect(b.metrics.revokedCloses).toBe(1);
    console.log(`revocation reached 3 sockets on 2 nodes in ${delay} ms`);
    // and the token cannot come back
    expect((await refused(connect(b.url, token))).body.code).toBe('TOKEN_REVOKED');
    await bystander.close();
  });

  it('a refreshed socket follows its new token: revoking the old jti leaves it open, revoking the new one closes it', async () => {
    const c = (await connect(a.url, hs({ sub: 'dave', jti: 'old-dave' }))).client;
    expect((await c.request({ type: 'token:refresh', token: hs({ sub: 'dave', jti: 'new-dave' }) })).type).toBe('token:refreshed');
    await redis.client.set('revoked:old-dave', '1', 'EX', 60);
    await until(() => a.revocations.isRevokedNow('old-dave') === true);
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await redis.client.set('revoked:new-dave', '1', 'EX', 60);
    expect(await c.closed).toEqual({ code: 4003, reason: 'Token revoked' });
  });

  it('a revocation that expires or is deleted lets the token in again', async () => {
    await redis.client.set('revoked:brief', '1', 'PX', 300);
    await until(() => a.revocations.isRevokedNow('brief') === true);
    await until(() => a.revocations.isRevokedNow('brief') === false, 5000);
    await redis.client.set('revoked:deleted', '1');
    await until(() => a.revocations.isRevokedNow('deleted') === true);
    await redis.client.del('revoked:deleted');
    await until(() => a.revocations.isRevokedNow('deleted') === false);
    const { client } = await connect(a.url, hs({ jti: 'deleted' }));
    await client.close();
  });

  it('FLUSHALL: the mirror starts over and matches Redis again', async () => {
    await redis.client.set('revoked:flushed', '1', 'EX', 60);
    await until(() => a.revocations.isRevokedNow('flushed') === true);
    const syncs = (a.revocations as unknown as { syncs: number }).syncs;
    await redis.client.flushall();
    await until(() => (a.revocations as unknown as { syncs: number }).syncs > syncs && ready(a));
    expect(a.revocations.isRevokedNow('flushed')).toBe(false);
    await redis.client.set('revoked:after-flush', '1', 'EX', 60);
    await until(() => a.revocations.isRevokedNow('after-flush') === true);
  });
});

describe('revocation mirror when Redis fails', () => {
  it('Redis dies: not ready, fail-closed 503; Redis back (empty): resynced, revocations written since are honoured', async () => {
    const r2 = await startRedis();
    const g = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300' });
    let c: Client | undefined;
    try {
      await until(() => ready(g));
      c = (await connect(g.url, hs({ sub: 'survivor' }))).client;
      await r2.kill();
      await until(() => !ready(g));
      expect((await refused(connect(g.url, hs()))).status).toBe(503);
      expect((await c.request({ type: 'ping' })).type).toBe('ack'); // open sockets keep working
      await r2.restart();
      await until(() => ready(g), 10_000);
      await r2.client.set('revoked:after-restart', '1', 'EX', 60);
      await until(() => g.revocations.isRevokedNow('after-restart') === true);
      expect((await refused(connect(g.url, hs({ jti: 'after-restart' })))).body.code).toBe('TOKEN_REVOKED');
      const { client } = await connect(g.url, hs({ sub: 'fresh' }));
      await client.close();
    } finally {
      await c?.close();
      await g.stop();
      await r2.stop();
    }
  });

  it('Redis stalls (SIGSTOP): the heartbeat marks the mirror not ready within the lookup timeout, upgrades fail closed; SIGCONT: ready again', async () => {
    const r2 = await startRedis();
    const g = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300' });
    try {
      await until(() => ready(g));
      process.kill(r2.pid()!, 'SIGSTOP');
      try {
        await until(() => !ready(g), 5000);
        expect((await refused(connect(g.url, hs()))).status).toBe(503);
      } finally {
        process.kill(r2.pid()!, 'SIGCONT');
      }
      await until(() => ready(g), 10_000);
      const { client } = await connect(g.url, hs({ sub: 'after-stall' }));
      await client.close();
    } finally {
      await g.stop();
      await r2.stop();
    }
  });

  it('fail-open mode accepts while the mirror cannot be trusted, and counts it', async () => {
    const r2 = await startRedis();
    const g = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_REVOCATION_TIMEOUT_MS: '300', WSGATE_REVOCATION_FAIL_OPEN: 'true' });
    try {
      await until(() => ready(g));
      await r2.kill();
      await until(() => !ready(g));
      const { client } = await connect(g.url, hs({ sub: 'open-anyway' }));
      expect(g.metrics.revocationFailOpen).toBeGreaterThan(0);
      await client.close();
    } finally {
      await g.stop();
      await r2.stop();
    }
  });
});

describe('the revocation delay script (scripts/revocation-delay.ts)', () => {
  it('measures: 10 revocations on 2 gateway processes, each socket closed with 4003 Token revoked within 1 s', async () => {
    const s = await measureRevocationDelay({ revocations: 10, nodes: 2, sockets: 1, cluster: false, gapMs: 0 });
    console.log(`10 revocations on 2 processes: median ${s.median.toFixed(2)} ms, max ${s.max.toFixed(2)} ms`);
    expect(s.wrongCloses).toBe(0);
    expect(s.delays).toHaveLength(10);
    expect(s.socketsPerRevocation).toBe(2);
    expect(s.max).toBeLessThan(1000);
  });
});
