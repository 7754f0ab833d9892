// Deployment-wide connection caps in Redis (docs/REDIS.md#deployment-caps). Layout, per tenant T
// ({T} is the tenant's hash tag: every key of a tenant is in one slot, so one script sees them all):
//   <p>caps:{T}:nodes          ZSET   nodeId -> when its counts stop counting (ms, Redis time)
//   <p>caps:{T}:node:<nodeId>  HASH   't' -> the node's connections in T, 'u:<user>' -> the user's; PEXPIRE ttl
//   <p>caps:node:{N}:alive     STRING EX ttl, SET ... GET at each refresh: absent -> Redis lost the node's counts
// A reservation is one script: it drops the nodes whose time is up, sums the tenant's and the
// user's counts over the others, and counts the connection on this node unless a cap is reached.
// A node that crashes stops counting when its entry's time is up (and its key expires): the
// counts are crash-safe without anyone cleaning up. Nodes refresh their tenants in rotating
// slices (each at least every TTL/2) and rewrite the ones Redis lost.
//
// Round trips: the reservations of one event-loop turn go out as one pipeline (on a cluster, one
// per master that serves their tenants' slots), and so do the releases. The script reads one
// hash per node present in the tenant: its cost grows with the nodes, not the connections.
import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailable, type CapStore, type CapVerdict } from '../ports.js';
import { isCluster, type RedisClient } from './client.js';
import { execGrouped, groupOf, tag, type Command } from './util.js';

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: nodes, own. ARGV: node id, user field, ttl ms, user cap, tenant cap, own-key prefix (+ node id = a node's key). */
const RESERVE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local nodes = redis.call('ZRANGE', KEYS[1], 0, -1)
local users, total = 0, 0
for _, node in ipairs(nodes) do
  local v = redis.call('HMGET', ARGV[6] .. node, 't', ARGV[2])
  total = total + (tonumber(v[1]) or 0)
  users = users + (tonumber(v[2]) or 0)
end
if tonumber(ARGV[4]) > 0 and users >= tonumber(ARGV[4]) then return 1 end
if tonumber(ARGV[5]) > 0 and total >= tonumber(ARGV[5]) then return 2 end
redis.call('HINCRBY', KEYS[2], 't', 1)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0`;

/** KEYS: own. ARGV: user field. 1 = released, 0 = the store had no such count (lost). */
const RELEASE = `local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if c <= 0 then return 0 end
if c == 1 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end
if redis.call('HINCRBY', KEYS[1], 't', -1) <= 0 then redis.call('DEL', KEYS[1]) end
return 1`;

/** KEYS: nodes, own. ARGV: node id, ttl ms. 1 = refreshed, 0 = lost. */
const REFRESH = `if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
${NOW}
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS: nodes, own. ARGV: node id, ttl ms, total, then field, count pairs. */
const REWRITE = `redis.call('DEL', KEYS[2])
if tonumber(ARGV[3]) <= 0 then redis.call('ZREM', KEYS[1], ARGV[1]) return 0 end
redis.call('HSET', KEYS[2], 't', ARGV[3])
for i = 4, #ARGV, 1000 do redis.call('HSET', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
${NOW}
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

interface Pending<T> { readonly command: Command; readonly resolve: (v: T) => void; readonly reject: (e: unknown) => void }

export class RedisCapStore implements CapStore {
  private reserves: Array<Pending<number>> = [];
  private releases: Array<Pending<number>> = [];
  private scheduled = false;
  /** pipelines sent (per master on a cluster), for the cost figures */
  roundTrips = 0;
  reservations = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly userCap: number,
    private readonly tenantCap: number,
    private readonly ttlSec: number,
    private readonly timeoutMs: number,
  ) {
    const define = (r: Redis | Cluster): void => {
      r.defineCommand('wsgateCapReserve', { numberOfKeys: 2, lua: RESERVE });
      r.defineCommand('wsgateCapRelease', { numberOfKeys: 1, lua: RELEASE });
      r.defineCommand('wsgateCapRefresh', { numberOfKeys: 2, lua: REFRESH });
      r.defineCommand('wsgateCapRewrite', { numberOfKeys: 2, lua: REWRITE });
    };
    define(redis);
  }

  private nodesKey(tenant: string): string {
    return `${this.prefix}caps:${tag(tenant)}:nodes`;
  }

  /** The prefix of a tenant's per-node keys (+ node id). */
  private nodeBase(tenant: string): string {
    return `${this.prefix}caps:${tag(tenant)}:node:`;
  }

  reserve(nodeId: string, tenant: string, user: string): Promise<CapVerdict> {
    this.reservations++;
    const ttlMs = this.ttlSec * 1000;
    const command: Command = ['wsgateCapReserve', this.nodesKey(tenant), this.nodeBase(tenant) + nodeId, nodeId, `u:${user}`, ttlMs, this.userCap, this.tenantCap, this.nodeBase(tenant)];
    return new Promise<number>((resolve, reject) => {
      this.reserves.push({ command, resolve, reject });
      this.schedule();
    }).then((r) => (r === 0 ? 'ok' : r === 1 ? 'user' : 'tenant'));
  }

  release(nodeId: string, tenant: string, user: string): Promise<boolean> {
    const command: Command = ['wsgateCapRelease', this.nodeBase(tenant) + nodeId, `u:${user}`];
    return new Promise<number>((resolve, reject) => {
      this.releases.push({ command, resolve, reject });
      this.schedule();
    }).then((r) => r === 1);
  }

  async refresh(nodeId: string, tenants: readonly string[]): Promise<{ lost: string[]; all: boolean }> {
    const res = await execGrouped(this.redis, [
      ['set', `${this.prefix}caps:node:${tag(nodeId)}:alive`, '1', 'EX', this.ttlSec, 'GET'],
      ...tenants.map((t): Command => ['wsgateCapRefresh', this.nodesKey(t), this.nodeBase(t) + nodeId, nodeId, this.ttlSec * 1000]),
    ]);
    return { lost: tenants.filter((_, i) => res[i + 1] === 0), all: res[0] === null };
  }

  async rewrite(nodeId: string, counts: ReadonlyMap<string, ReadonlyMap<string, number>>): Promise<void> {
    const m: Command[] = [];
    for (const [tenant, users] of counts) {
      let total = 0;
      const pairs: Array<string | number> = [];
      for (const [u, c] of users) {
        if (c <= 0) continue;
        total += c;
        pairs.push(`u:${u}`, c);
      }
      m.push(['wsgateCapRewrite', this.nodesKey(tenant), this.nodeBase(tenant) + nodeId, nodeId, this.ttlSec * 1000, total, ...pairs]);
    }
    await execGrouped(this.redis, m);
  }

  async removeNode(nodeId: string, tenants: readonly string[]): Promise<void> {
    const m: Command[] = [['del', `${this.prefix}caps:node:${tag(nodeId)}:alive`]];
    for (const t of tenants) m.push(['del', this.nodeBase(t) + nodeId], ['zrem', this.nodesKey(t), nodeId]);
    await execGrouped(this.redis, m);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = [...this.reserves, ...this.releases];
    this.reserves = [];
    this.releases = [];
    for (const group of this.groups(batch)) this.send(group);
  };

  /** One group on a single Redis; on a cluster one per master serving the commands' slots. */
  private groups(all: Array<Pending<number>>): Array<Array<Pending<number>>> {
    const redis = this.redis;
    if (!isCluster(redis)) return [all];
    const by = new Map<string, Array<Pending<number>>>();
    for (const p of all) {
      let g: string;
      try {
        g = groupOf(redis, p.command[1]);
      } catch (err) {
        p.reject(err);
        continue;
      }
      const list = by.get(g);
      if (list) list.push(p);
      else by.set(g, [p]);
    }
    return [...by.values()];
  }

  private send(group: Array<Pending<number>>): void {
    this.roundTrips++;
    let done = false;
    const fail = (err: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const e = err instanceof StoreUnavailable ? err : new StoreUnavailable('connection caps: Redis did not answer', err);
      for (const p of group) p.reject(e);
    };
    const timer = setTimeout(() => fail(new StoreUnavailable('connection caps: timed out')), this.timeoutMs);
    const p = this.redis.pipeline(group.map((x) => x.command) as unknown as string[][]);
    p.exec().then((res) => {
      if (done) return;
      if (!res) return fail(new StoreUnavailable('connection caps: pipeline aborted'));
      done = true;
      clearTimeout(timer);
      group.forEach((x, i) => {
        const [err, v] = res[i]!;
        if (err) x.reject(new StoreUnavailable('connection caps: script failed', err));
        else x.resolve(Number(v));
      });
    }, fail);
  }
}
