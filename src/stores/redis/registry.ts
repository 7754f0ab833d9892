// Connection registry in Redis. Layout (docs/REDIS.md):
//   <p>nodes                  ZSET    nodeId -> last heartbeat (ms)
//   <p>node:<nodeId>:conns    HASH    connId -> JSON {u,t,s,e}; EXPIRE ttl, refreshed each apply
//   <p>node:<nodeId>:alive    STRING  EX ttl; its absence tells the node that Redis lost its state
// One apply is one MULTI/EXEC: one round trip whatever the batch size.
import type { Redis } from 'ioredis';
import type { ApplyResult, ConnectionEntry, RegistryBatch, RegistryStore } from '../ports.js';
import { execOrThrow, liveNodes } from './util.js';

export class RedisRegistryStore implements RegistryStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSec: number,
  ) {}

  private connsKey(nodeId: string): string {
    return `${this.prefix}node:${nodeId}:conns`;
  }

  async apply(nodeId: string, batch: RegistryBatch): Promise<ApplyResult> {
    const key = this.connsKey(nodeId);
    const m = this.redis.multi();
    m.set(`${this.prefix}node:${nodeId}:alive`, '1', 'EX', this.ttlSec, 'GET');
    if (batch.full) m.del(key);
    if (batch.removals.length > 0) m.hdel(key, ...batch.removals);
    if (batch.upserts.length > 0) {
      const args: string[] = [];
      for (const e of batch.upserts) args.push(e.connId, JSON.stringify({ u: e.userId, t: e.tenantId, s: e.since, e: e.exp }));
      m.hset(key, ...args);
    }
    m.expire(key, this.ttlSec);
    m.zadd(`${this.prefix}nodes`, Date.now(), nodeId);
    const res = await execOrThrow(m);
    return { lost: res[0] === null };
  }

  async list(): Promise<ConnectionEntry[]> {
    const nodes = await liveNodes(this.redis, `${this.prefix}nodes`, this.ttlSec);
    if (nodes.length === 0) return [];
    const p = this.redis.pipeline();
    for (const n of nodes) p.hgetall(this.connsKey(n));
    const res = await execOrThrow(p);
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
    await execOrThrow(this.redis.multi().del(this.connsKey(nodeId), `${this.prefix}node:${nodeId}:alive`).zrem(`${this.prefix}nodes`, nodeId));
  }
}
