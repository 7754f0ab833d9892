// One gateway of several worker processes (WSGATE_WORKERS=2, the built CLI): clients cannot tell
// how many workers there are. Rooms, fan-out, presence (queries and notifications), caps and
// revocation behave as on one process whether two clients landed on one worker or two; a worker
// that dies leaves presence at once and is restarted; /healthz and /metrics speak for the host; a
// rolling restart (SIGHUP) drops no connection of the other workers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tag } from '../../src/stores/redis/util.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { probePort } from '../../src/server/listen.js';
import { MAX_FAILURES, Supervisor } from '../../src/supervisor/supervisor.js';
import { connect, refused, type Client, type Msg } from '../helpers/client.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs, SECRET } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

interface Health {
  status: string;
  connections: number;
  workers: Array<{ node: string; pid: number; state: string; restarts: number; connections?: number }>;
}

/**
 * GET /healthz, asked again when the request fails: a request that reached a worker just killed
 * (or sat in its listen queue, which the kernel resets with it) fails, as it would for any client.
 */
async function health(gw: GatewayProcess): Promise<Health> {
  for (let i = 0; ; i++) {
    try {
      return (await (await fetch(`${gw.http}/healthz`)).json()) as Health;
    } catch (e) {
      if (i >= 5) throw e;
    }
  }
}

/**
 * A client of `sub` on the worker `node` (the kernel spreads connections over the workers: connect
 * until one lands there). Each attempt that lands elsewhere is closed.
 */
async function on(gw: GatewayProcess, node: string, sub: string, jti?: string): Promise<Client> {
  for (let i = 0; i < 60; i++) {
    const { client, connected } = await connect(gw.url, hs({ sub, ...(jti ? { jti } : {}) }));
    if (connected.node === node) return client;
    await client.close();
  }
  throw new Error(`no connection landed on ${node} in 60 attempts`);
}

const members = async (c: Client, room: string): Promise<string[]> => ((await c.request({ type: 'presence', room })).result as { users: string[] }).users;
const presenceOf = (room: string) => (m: Msg): boolean => m.type === 'presence' && m.room === room;

describe('two workers on the embedded store (the in-host store)', () => {
  let gw: GatewayProcess;
  let nodes: string[];
  beforeAll(async () => {
    gw = await spawnGateway({ WSGATE_WORKERS: '2', WSGATE_PRESENCE_FLUSH_MS: '50', WSGATE_REGISTRY_FLUSH_MS: '50', WSGATE_PRESENCE_TTL_SEC: '60', WSGATE_MAX_CONNECTIONS_PER_USER: '2' });
    nodes = (await health(gw)).workers.map((w) => w.node);
  });
  afterAll(() => gw.kill());

  it('each worker is a node <node>.<n>, named in its connected frame; /healthz reports every worker', async () => {
    const h = await health(gw);
    expect(h.status).toBe('ok');
    expect(h.workers).toHaveLength(2);
    expect(h.workers.every((w) => w.state === 'listening' && w.restarts === 0)).toBe(true);
    const host = nodes[0]!.slice(0, nodes[0]!.lastIndexOf('.'));
    expect(nodes).toEqual([`${host}.1`, `${host}.2`]);
    const a = await on(gw, nodes[0]!, 'hana');
    const b = await on(gw, nodes[1]!, 'hugo');
    await until(async () => (await health(gw)).connections === 2);
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    expect(metrics).toMatch(/^wsgate_connections 2$/m);
    expect(metrics).toContain(`wsgate_worker_connections{node="${nodes[0]}"} 1`);
    expect(metrics).toMatch(/^wsgate_workers_listening 2$/m);
    await a.close();
    await b.close();
  });

  it('rooms, fan-out and presence across workers; a user on both workers joins and leaves once', async () => {
    const ann = await on(gw, nodes[0]!, 'ann');
    const ben = await on(gw, nodes[1]!, 'ben');
    await ann.request({ type: 'join', rooms: ['x/1'] });
    await ben.request({ type: 'join', rooms: ['x/1'] });
    expect(await ann.next((m) => presenceOf('x/1')(m) && (m.joined as string[]).includes('ben'))).toBeTruthy();
    // each worker knows its own members at once, the other's as of its last presence flush
    await until(async () => (await members(ann, 'x/1')).length === 2);
    await until(async () => (await members(ben, 'x/1')).length === 2);
    expect(await members(ben, 'x/1')).toEqual(['ann', 'ben']);
    await ann.request({ type: 'publish', room: 'x/1', data: { n: 1 } });
    expect(await ben.type('message')).toMatchObject({ room: 'x/1', data: { n: 1 }, from: 'ann' });
    await ben.request({ type: 'publish', room: 'x/1', data: 'back', echo: true });
    expect((await ann.type('message')).data).toBe('back');
    expect((await ben.type('message')).data).toBe('back'); // echo, once
    expect(await ann.none((m) => m.type === 'message', 200)).toBe(true);
    expect(await ben.none((m) => m.type === 'message', 200)).toBe(true);

    // cleo on both workers: one join; leaving one worker is no leave, leaving the other is.
    // (Changes of one user on two workers within one flush interval may still be announced as a
    // leave and a join: each worker flushes on its own. So each step waits for the previous flush.)
    const cleo1 = await on(gw, nodes[0]!, 'cleo');
    const cleo2 = await on(gw, nodes[1]!, 'cleo');
    await ann.request({ type: 'join', rooms: ['x/2'] });
    await cleo1.request({ type: 'join', rooms: ['x/1'] });
    expect(await ann.next((m) => presenceOf('x/1')(m) && (m.joined as string[]).includes('cleo'))).toBeTruthy();
    // x/2 is new to cleo: its notice says the second worker's flush (x/1 with it) was applied
    await cleo2.request({ type: 'join', rooms: ['x/1', 'x/2'] });
    expect(await ann.next((m) => presenceOf('x/2')(m) && (m.joined as string[]).includes('cleo'))).toBeTruthy();
    await cleo1.request({ type: 'leave', rooms: ['x/1'] });
    expect(await ann.none((m) => presenceOf('x/1')(m) && ((m.joined as string[]).includes('cleo') || (m.left as string[]).includes('cleo')), 400)).toBe(true);
    expect(await members(ann, 'x/1')).toEqual(['ann', 'ben', 'cleo']);
    await cleo2.close();
    expect(await ann.next((m) => presenceOf('x/1')(m) && (m.left as string[]).includes('cleo'))).toBeTruthy();
    for (const c of [ann, ben, cleo1]) await c.close();
  });

  it('token:refresh on either worker: the new permissions apply there', async () => {
    const a = await on(gw, nodes[0]!, 'rene');
    const b = await on(gw, nodes[1]!, 'rene');
    for (const c of [a, b]) {
      const r = await c.request({ type: 'token:refresh', token: hs({ sub: 'rene', permissions: ['join:only/*'] }) });
      expect(r).toMatchObject({ type: 'token:refreshed', permissions: ['join:only/*'] });
      expect((await c.request({ type: 'join', rooms: ['x/9'] })).code).toBe('FORBIDDEN');
    }
    await a.close();
    await b.close();
  });

  it('the per-user cap counts every worker of the host', async () => {
    const d1 = await on(gw, nodes[0]!, 'dora');
    const d2 = await on(gw, nodes[1]!, 'dora');
    // A third connection is refused whichever worker takes it (several attempts reach both).
    for (let i = 0; i < 6; i++) expect((await refused(connect(gw.url, hs({ sub: 'dora' })))).status).toBe(429);
    await d1.close();
    // the slot is given back when the worker sees the close: admitted again
    let d3: Client | undefined;
    await until(async () => {
      d3 = await connect(gw.url, hs({ sub: 'dora' })).then((r) => r.client, () => undefined);
      return d3 !== undefined;
    }, 4000);
    await d2.close();
    await d3!.close();
  });

  it('a worker killed with SIGKILL: its users leave presence at once (not after the 60 s TTL), the rooms are told, it is restarted', async () => {
    const ghost = await on(gw, nodes[0]!, 'ghost');
    const watch = await on(gw, nodes[1]!, 'watch');
    await ghost.request({ type: 'join', rooms: ['y/1'] });
    await watch.request({ type: 'join', rooms: ['y/1'] });
    await until(async () => (await members(watch, 'y/1')).length === 2);
    const dead = (await health(gw)).workers.find((w) => w.node === nodes[0])!;
    process.kill(dead.pid, 'SIGKILL');
    expect((await ghost.closed).code).toBe(1006);
    expect(await watch.next((m) => presenceOf('y/1')(m) && (m.left as string[]).includes('ghost'), 5000)).toBeTruthy();
    expect(await members(watch, 'y/1')).toEqual(['watch']);
    // restarted with a node id of its own
    await until(async () => {
      const h = await health(gw);
      return h.status === 'ok' && h.workers[0]!.restarts === 1 && h.workers[0]!.state === 'listening';
    }, 8000);
    const h = await health(gw);
    expect(h.workers[0]!.node).not.toBe(nodes[0]);
    expect(h.workers[0]!.pid).not.toBe(dead.pid);
    nodes = h.workers.map((w) => w.node);
    await watch.close();
  });
});

describe('two workers on Redis', () => {
  let redis: TestRedis;
  let gw: GatewayProcess;
  let nodes: string[];
  beforeAll(async () => {
    redis = await startRedis();
    gw = await spawnGateway({ WSGATE_WORKERS: '2', WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: 'wk:', WSGATE_PRESENCE_FLUSH_MS: '50', WSGATE_REGISTRY_FLUSH_MS: '50', WSGATE_PRESENCE_TTL_SEC: '60', WSGATE_REGISTRY_TTL_SEC: '60' });
    nodes = (await health(gw)).workers.map((w) => w.node);
  });
  afterAll(async () => {
    await gw.kill();
    await redis.stop();
  });

  it('a revoked token closes its sockets on every worker (4003)', async () => {
    const a = await on(gw, nodes[0]!, 'rita', 'jti-shared');
    const b = await on(gw, nodes[1]!, 'rita', 'jti-shared');
    await redis.client.set('revoked:jti-shared', '1', 'EX', 60);
    expect((await a.closed).code).toBe(4003);
    expect((await b.closed).code).toBe(4003);
  });

  it('a dead worker: the supervisor removes its registry and presence entries from Redis at once and tells its rooms', async () => {
    const ghost = await on(gw, nodes[1]!, 'ghost');
    const watch = await on(gw, nodes[0]!, 'watch');
    await ghost.request({ type: 'join', rooms: ['z/1'] });
    await watch.request({ type: 'join', rooms: ['z/1'] });
    await until(async () => (await redis.client.exists(`wk:node:${tag(nodes[1]!)}:conns`)) === 1 && (await members(watch, 'z/1')).length === 2);
    process.kill((await health(gw)).workers[1]!.pid, 'SIGKILL');
    expect(await watch.next((m) => presenceOf('z/1')(m) && (m.left as string[]).includes('ghost'), 5000)).toBeTruthy();
    expect(await members(watch, 'z/1')).toEqual(['watch']);
    expect(await redis.client.exists(`wk:node:${tag(nodes[1]!)}:conns`)).toBe(0);
    await watch.close();
  });
});

describe('rolling restart (SIGHUP)', () => {
  it('replaces the workers one at a time: the other worker keeps its connections, new connections are taken throughout', async () => {
    const gw = await spawnGateway({ WSGATE_WORKERS: '2', WSGATE_DRAIN_SEC: '1' });
    try {
      const nodes = (await health(gw)).workers.map((w) => w.node);
      const first = await on(gw, nodes[0]!, 'ona');
      const second = await on(gw, nodes[1]!, 'otto');
      let secondClosedAt = 0;
      void second.closed.then(() => (secondClosedAt = Date.now()));
      // A client that connects over and over during the restart: none may be refused.
      let connecting = true;
      let attempts = 0;
      const failures: string[] = [];
      const loop = (async () => {
        while (connecting) {
          attempts++;
          try {
            const { client } = await connect(gw.url, hs({ sub: 'loop' }));
            await client.close();
          } catch (e) {
            failures.push(typeof (e as { status?: unknown }).status === 'number' ? `refused ${(e as { status: number }).status}` : String((e as Error).message));
          }
        }
      })();
      gw.proc.kill('SIGHUP');
      // The first worker drains: its client gets 4500 while the second worker's client stays.
      expect(await first.closed).toEqual({ code: 4500, reason: 'Server shutting down' });
      const firstClosedAt = Date.now();
      await until(async () => {
        const h = await health(gw);
        return h.workers.every((w) => w.state === 'listening') && h.workers.every((w, i) => w.node !== nodes[i]);
      }, 20_000);
      connecting = false;
      await loop;
      expect(secondClosedAt === 0 || secondClosedAt > firstClosedAt).toBe(true);
      expect(await second.closed).toEqual({ code: 4500, reason: 'Server shutting down' });
      // No refusal ever. A connection the kernel had queued on a worker's listen socket when that
      // socket closed is reset (SO_REUSEPORT without net.ipv4.tcp_migrate_req, docs/WORKERS.md): at
      // most one per replaced worker.
      expect(failures.filter((f) => !/ECONNRESET|socket hang up/.test(f))).toEqual([]);
      expect(failures.length).toBeLessThanOrEqual(2);
      expect(attempts).toBeGreaterThan(5);
      expect((await health(gw)).workers.map((w) => w.restarts)).toEqual([1, 1]);
    } finally {
      expect(await gw.kill()).toBe(0);
    }
  }, 40_000);
});

describe('supervisor', () => {
  it('a worker that keeps dying is restarted with backoff, then the supervisor gives up (the CLI then exits 1)', async () => {
    // A stand-in worker that says it listens and dies 20 ms later, every time.
    const dir = mkdtempSync(join(tmpdir(), 'wsgate-sup-'));
    const script = join(dir, 'dies.mjs');
    writeFileSync(script, `process.on('message', (m) => { if (m.t === 'start') { process.send({ t: 'listening', port: m.config.port }); setTimeout(() => process.exit(1), 20); } });\n`);
    const config = loadConfig({ WSGATE_PORT: '0', WSGATE_HOST: '127.0.0.1', WSGATE_JWT_SECRET: SECRET, WSGATE_LOG_LEVEL: 'silent' }, [], { nodeId: 'sup-test' });
    let fatal = '';
    const sup = new Supervisor({ config, workers: 1, logger: createLogger('silent'), script, execArgv: [], backoffMs: 5, maxBackoffMs: 20, onFatal: (r) => (fatal = r) });
    try {
      await sup.start();
      await until(() => fatal !== '', 15_000);
      expect(fatal).toBe(`worker slot 0 died ${MAX_FAILURES + 1} times in a row`);
      // restarted after each of the first MAX_FAILURES deaths, given up at the next
      expect(await sup.metrics()).toMatch(new RegExp(`^wsgate_worker_restarts_total ${MAX_FAILURES}$`, 'm'));
      expect((await sup.health()).status).toBe('degraded');
    } finally {
      await sup.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('workers that cannot start: the CLI exits 1', async () => {
    const err = await spawnGateway({ WSGATE_WORKERS: '2', WSGATE_JWT_PUBLIC_KEY_FILE: '/nonexistent/key.pem' }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/exited \(1\) before listening/);
  });

  it('a supervisor killed with SIGKILL: its workers stop (no orphan keeps the port)', async () => {
    const gw = await spawnGateway({ WSGATE_WORKERS: '2' });
    const pids = (await health(gw)).workers.map((w) => w.pid);
    expect(await gw.kill('SIGKILL')).toBeNull();
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until(() => !pids.some(alive), 15_000);
    expect(await probePort('127.0.0.1', gw.port)).toBe(gw.port);
  });
});
