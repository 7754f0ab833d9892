// Two gateway processes sharing one Redis: presence for the whole deployment, publishes across
// nodes, a node killed with SIGKILL vanishing within the TTL, and presence writes batched per
// flush (Redis commands counted by the server).
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../helpers/client.js';
import { startGateway } from '../helpers/gateway.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { keyOf } from '../../src/keys/keys.js';
import { hs } from '../helpers/tokens.js';
import { roomKey } from '../../src/rooms/rooms.js';
import { compare, documented } from '../helpers/redis-doc.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.stop());


describe('two nodes, one Redis', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  beforeAll(async () => {
    const env = { WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: 'cluster:', WSGATE_PRESENCE_FLUSH_MS: '100', WSGATE_PRESENCE_TTL_SEC: '2', WSGATE_REGISTRY_FLUSH_MS: '100', WSGATE_REGISTRY_TTL_SEC: '2' };
    [a, b] = await Promise.all([spawnGateway({ ...env, WSGATE_NODE_ID: 'node-a' }), spawnGateway({ ...env, WSGATE_NODE_ID: 'node-b' })]);
  });
  afterAll(async () => {
    await Promise.all([a.kill(), b.kill()]);
  });

  it('presence answers for the deployment; publishes and notifications cross nodes', async () => {
    const onA = (await connect(a.url, hs({ sub: 'ann' }))).client;
    const onB = (await connect(b.url, hs({ sub: 'ben' }), { json: true })).client;
    await onA.request({ type: 'join', rooms: ['team/1'] });
    await onB.request({ type: 'join', rooms: ['team/1'] });
    // each node knows its own members at once, the other's as of its last presence flush
    await until(async () => ((await onB.request({ type: 'presence', room: 'team/1' })).result as { users: string[] }).users.length === 2);
    await until(async () => ((await onA.request({ type: 'presence', room: 'team/1' })).result as { users: string[] }).users.length === 2);
    expect((await onA.request({ type: 'presence', room: 'team/1' })).result).toEqual({ room: 'team/1', users: ['ann', 'ben'] });
    // ben's join, flushed by node B, reaches ann on node A.
    expect(await onA.next((m) => m.type === 'presence' && (m.joined as string[]).includes('ben'))).toMatchObject({ room: 'team/1' });
    await onA.request({ type: 'publish', room: 'team/1', data: { n: 1 } });
    expect(await onB.type('message')).toMatchObject({ room: 'team/1', data: { n: 1 }, from: 'ann', __binary: false });
    await onB.request({ type: 'publish', room: 'team/1', data: 'back' });
    expect((await onA.type('message')).data).toBe('back');
    // A node does not deliver its own publish twice (its echo over the bus is dropped).
    expect(await onA.none((m) => m.type === 'message', 300)).toBe(true);
    await onA.close();
    await onB.close();
  });

  it('a node killed with SIGKILL: its users leave presence and the registry within the TTL', async () => {
    const ghost = (await connect(a.url, hs({ sub: 'ghost' }))).client;
    const watcher = (await connect(b.url, hs({ sub: 'watch' }))).client;
    await ghost.request({ type: 'join', rooms: ['team/2'] });
    await watcher.request({ type: 'join', rooms: ['team/2'] });
    const members = async (): Promise<string[]> => ((await watcher.request({ type: 'presence', room: 'team/2' })).result as { users: string[] }).users;
    await until(async () => (await members()).includes('ghost'));
    // node A's registry hash, tagged with its node id (docs/REDIS.md)
    const conns = 'cluster:node:{6:node-a}:conns';
    expect(await redis.client.exists(conns)).toBe(1);
    expect(await a.kill('SIGKILL')).toBeNull();
    const killedAt = Date.now();
    await until(async () => !(await members()).includes('ghost'), 8000);
    expect(Date.now() - killedAt).toBeLessThan(2000 + 4000); // the 2 s TTL, plus flush and polling slack
    expect(await members()).toEqual(['watch']);
    const nodes = await redis.client.zrange('cluster:nodes', 0, -1);
    expect(nodes).toContain('node-b');
    // The registry of the dead node expires too (key TTL).
    await until(async () => (await redis.client.exists(conns)) === 0, 5000);
    await watcher.close();
  });
});

describe('presence writes are batched', () => {
  it('1000 joins in one flush interval cost one MULTI/EXEC with one SADD per room', async () => {
    const gw = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_PRESENCE_FLUSH_MS: '1500', WSGATE_REGISTRY_FLUSH_MS: '60000' });
    try {
      const N = 1000;
      const ROOMS = 10;
      const sockets = await Promise.all(
        Array.from(
          { length: N },
          (_, i) =>
            new Promise<WebSocket>((resolve, reject) => {
              const ws = new WebSocket(gw.url, ['wsgate.v1.json'], { headers: { authorization: `Bearer ${hs({ sub: `u${i}` })}` } });
              ws.once('message', () => resolve(ws));
              ws.once('error', reject);
              ws.once('close', (code) => reject(new Error(`closed ${code} before the connected frame`)));
            }),
        ),
      );
      await gw.hub.flushPresence(); // start from a clean interval
      const sadd0 = await redis.calls('sadd');
      const exec0 = await redis.calls('exec');
      let acks = 0;
      await new Promise<void>((resolve) => {
        sockets.forEach((ws, i) => {
          ws.on('message', (d) => {
            if ((JSON.parse(d.toString()) as { type: string }).type === 'ack' && ++acks === N) resolve();
          });
          ws.send(JSON.stringify({ id: 1, type: 'join', rooms: [`big/${i % ROOMS}`] }));
        });
      });
      await gw.hub.flushPresence();
      const sadds = (await redis.calls('sadd')) - sadd0;
      const execs = (await redis.calls('exec')) - exec0;
      console.log(`1000 joins over ${ROOMS} rooms -> ${execs} EXEC, ${sadds} SADD`);
      expect(sadds).toBeGreaterThanOrEqual(ROOMS);
      expect(sadds).toBeLessThanOrEqual(2 * ROOMS); // at most two flushes straddle the joins
      expect(execs).toBeLessThanOrEqual(2);
      for (let r = 0; r < ROOMS; r++) expect((await gw.presenceStore.members(roomKey('acme', `big/${r}`))).length).toBe(N / ROOMS);
      for (const ws of sockets) ws.terminate();
    } finally {
      await gw.stop();
    }
  });
});

describe('docs/REDIS.md on a single Redis', () => {
  it('names every key and channel two gateways (with deployment caps) use, and each named one is in use', async () => {
    const prefix = 'doc-single:';
    const env = { WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: prefix, WSGATE_DEPLOYMENT_MAX_CONNECTIONS_PER_TENANT: '100' };
    const [g1, g2] = await Promise.all([startGateway(env), startGateway(env)]);
    try {
      const x = (await connect(g1.url, hs({ sub: 'doc-x' }))).client;
      const y = (await connect(g2.url, hs({ sub: 'doc-y' }))).client;
      await x.request({ type: 'join', rooms: ['doc/1'] });
      await y.request({ type: 'join', rooms: ['doc/1'] });
      await until(async () => ((await x.request({ type: 'presence', room: 'doc/1' })).result as { users: string[] }).users.length === 2);
      await until(() => g1.metrics.gauges().registry_pending === 0 && g2.metrics.gauges().registry_pending === 0);
      await g1.hub.flushCaps();
      await redis.client.set('revoked:doc-probe', '1', 'EX', 60);
      await redis.client.set(`revoked-user:${keyOf('acme', 'doc-probe')}`, '1', 'EX', 60);
      const keys = [...(await redis.client.keys(`${prefix}*`)), ...(await redis.client.keys('revoked:doc-probe')), ...(await redis.client.keys('revoked-user:*doc-probe'))];
      const k = compare(keys, documented('Keys', prefix));
      expect(k.undocumented).toEqual([]);
      expect(k.unused).toEqual([]);
      const channels = (await redis.client.call('PUBSUB', 'CHANNELS', '*')) as string[];
      const c = compare(channels.filter((ch) => ch.startsWith(prefix) || ch.startsWith('__redis__')), documented('Channels', prefix));
      expect(c.undocumented).toEqual([]);
      expect(c.unused).toEqual([]); // <p>bus: every node subscribes to it for the server API's broadcasts
      await Promise.all([x.close(), y.close()]);
    } finally {
      await Promise.all([g1.stop(), g2.stop()]);
    }
  });
});
