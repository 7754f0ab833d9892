// Deployment-wide connection caps (WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER / _PER_TENANT) on a
// single Redis: across gateway processes, together with the per-node caps, after a crash (the
// counts of a node killed with SIGKILL stop counting within the TTL), and when Redis fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { spawnGateway } from '../helpers/process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());

const code = async (p: Promise<unknown>): Promise<string | undefined> => (await refused(p)).body.code;

describe('deployment caps', () => {
  it('hold across processes; a node killed with SIGKILL stops counting within the TTL', async () => {
    const env = { WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: 'caps-crash:', WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER: '2', WSGATE_REGISTRY_FLUSH_MS: '100', WSGATE_REGISTRY_TTL_SEC: '2' };
    const [a, b] = await Promise.all([spawnGateway({ ...env, WSGATE_NODE_ID: 'cap-a' }), spawnGateway({ ...env, WSGATE_NODE_ID: 'cap-b' })]);
    const open: Client[] = [];
    try {
      open.push((await connect(a.url, hs({ sub: 'gus' }))).client, (await connect(a.url, hs({ sub: 'gus' }))).client);
      expect(await code(connect(b.url, hs({ sub: 'gus' })))).toBe('TOO_MANY_CONNECTIONS');
      expect(await a.kill('SIGKILL')).toBeNull();
      const killedAt = Date.now();
      await until(async () => {
        try {
          open.push((await connect(b.url, hs({ sub: 'gus' }))).client);
          return true;
        } catch {
          return false;
        }
      }, 8000, 200);
      expect(Date.now() - killedAt).toBeLessThan(2000 + 3000); // the TTL, plus polling slack
      open.push((await connect(b.url, hs({ sub: 'gus' }))).client);
      expect(await code(connect(b.url, hs({ sub: 'gus' })))).toBe('TOO_MANY_CONNECTIONS');
    } finally {
      for (const c of open) c.ws.terminate();
      await Promise.all([a.kill(), b.kill()]);
    }
  });

  it('the per-node cap still applies first; a close gives the reservation back', async () => {
    const g = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_MAX_CONNECTIONS_PER_USER: '1', WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER: '3' });
    try {
      const first = (await connect(g.url, hs({ sub: 'hal' }))).client;
      const reservations = g.metrics.gauges().caps_reservations!;
      expect(reservations).toBe(1);
      expect(await code(connect(g.url, hs({ sub: 'hal' })))).toBe('TOO_MANY_CONNECTIONS');
      expect(g.metrics.gauges().caps_reservations).toBe(reservations); // refused by the node's own cap: no reservation asked of Redis
      await first.close();
      const again = (await connect(g.url, hs({ sub: 'hal' }))).client;
      await again.close();
    } finally {
      await g.stop();
    }
  });

  it('Redis down: upgrades fail closed (503); Redis back empty: the counts are rewritten and hold again', async () => {
    const r2 = await startRedis();
    const g = await startGateway({ WSGATE_REDIS_URL: r2.url, WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_USER: '1', WSGATE_REVOCATION_MODE: 'lookup', WSGATE_REVOCATION_TIMEOUT_MS: '300' });
    try {
      const ivy = (await connect(g.url, hs({ sub: 'ivy' }))).client;
      await r2.kill();
      expect((await refused(connect(g.url, hs({ sub: 'jon' })))).status).toBe(503);
      await r2.restart();
      // the node sees that Redis lost its counts and rewrites them: ivy's connection counts again
      await until(async () => (await r2.client.exists(`${g.config.keyPrefix}caps:{4:acme}:node:${g.config.nodeId}`)) === 1, 10_000);
      expect(await code(connect(g.url, hs({ sub: 'ivy' })))).toBe('TOO_MANY_CONNECTIONS');
      await ivy.close();
      await until(async () => (await r2.client.exists(`${g.config.keyPrefix}caps:{4:acme}:node:${g.config.nodeId}`)) === 0);
      const again = (await connect(g.url, hs({ sub: 'ivy' }))).client;
      await again.close();
    } finally {
      await g.stop();
      await r2.stop();
    }
  });
});
