// Connection registry in Redis. Layout (docs/REDIS.md):
//   <p>nodes                   ZSET    nodeId -> last heartbeat (ms)
//   <p>node:{N}:conns          HASH    connId -> JSON {u,t,s,e}; EXPIRE ttl, refreshed each apply
//   <p>node:{N}:alive          STRING  EX ttl; its absence tells the node that Redis lost its state
// {N} is the hash tag of the node id (util.ts tag()): a node's keys share one slot on a cluster.
// One apply is one MULTI/EXEC on a single Redis; on a cluster, one pipeline per master that holds
// one of its keys (the node's slot and the nodes ZSET's), in parallel.
import type { ApplyResult, ConnectionEntry, RegistryBatch, RegistryStore } from '../ports.js';
import type { RedisClient } from './client.js';
import { execGrouped, liveNodes, tag, type Command } from './util.js';

export class RedisRegistryStore implements RegistryStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlSec: number,
  ) {}

  private connsKey(nodeId: string): string {
    return `${this.prefix}node:${tag(nodeId)}:conns`;
  }

  private aliveKey(nodeId: string): string {
    return `${this.prefix}node:${tag(nodeId)}:alive`;
  }

  async apply(nodeId: string, batch: RegistryBatch): Promise<ApplyResult> {
    const key = this.connsKey(nodeId);
    const m: Command[] = [['set', this.aliveKey(nodeId), '1', 'EX', this.ttlSec, 'GET']];
    if (batch.full) m.push(['del', key]);
    if (batch.removals.length > 0) m.push(['hdel', key, ...batch.removals]);
    if (batch.upserts.length > 0) {
      const args: string[] = [];
      for (const e of batch.upserts) args.push(e.connId, JSON.stringify({ u: e.userId, t: e.tenantId, s: e.since, e: e.exp }));
      m.push(['hset', key, ...args]);
    }
    m.push(['expire', key, this.ttlSec], ['zadd', `${this.prefix}nodes`, Date.now(), nodeId]);
    const res = await execGrouped(this.redis, m);
    return { lost: res[0] === null };
  }

  async list(): Promise<ConnectionEntry[]> {
    const nodes = await liveNodes(this.redis, `${this.prefix}nodes`, this.ttlSec);
    if (nodes.length === 0) return [];
    const res = await execGrouped(this.redis, nodes.map((n): Command => ['hgetall', this.connsKey(n)]));
    const out: ConnectionEntry[] = [];
    res.forEach((h, i) => {
      for (const [connId, json] of Object.entries(h as Record<string, string>)) {
        const v = JSON.parse(json) as { u: string; t: string; s: number; e: number };
        out.push({ connId, nodeId: nodes[i]!, userId: v.u, tenantId: v.t, since: v.s, exp: v.e });
      }
    });
    return out;
  }

  liveNodes(): Promise<string[]> {
    return liveNodes(this.redis, `${this.prefix}nodes`, this.ttlSec);
  }

  async removeNode(nodeId: string): Promise<void> {
    await execGrouped(this.redis, [['del', this.connsKey(nodeId)], ['del', this.aliveKey(nodeId)], ['zrem', `${this.prefix}nodes`, nodeId]]);
  }
}
