// Presence in Redis. Layout (docs/REDIS.md):
//   <p>presence:nodes                     ZSET    nodeId -> last heartbeat (ms)
//   <p>presence:alive:<nodeId>            STRING  EX ttl; absent -> Redis lost this node's state
//   <p>presence:rooms:<nodeId>            SET     room keys this node has a set for; EX ttl
//   <p>presence:room:<roomKey>:<nodeId>   SET     users of the room on that node; EX ttl
// A room's members are the union of its sets over live nodes, so a user on several nodes
// counts once, and a dead node's users vanish when its heartbeat is older than the TTL.
// One apply is one MULTI/EXEC (pipelined MULTIs of at most 4,096 commands for a big batch, so that
// Redis serves other clients between them); its size follows the rooms that changed plus a refresh
// slice. A full rewrite reads the node's room index first (one more round trip) to delete the sets
// of rooms the node no longer has.
import type { Redis } from 'ioredis';
import type { ApplyResult, PresenceBatch, PresenceStore } from '../ports.js';
import { ChunkedMulti, execOrThrow, liveNodes } from './util.js';

const MAX_COMMANDS_PER_MULTI = 4096;

export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSec: number,
  ) {}

  private roomNodeKey(room: string, nodeId: string): string {
    return `${this.prefix}presence:room:${room}:${nodeId}`;
  }

  private indexKey(nodeId: string): string {
    return `${this.prefix}presence:rooms:${nodeId}`;
  }

  async apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult> {
    const ttl = this.ttlSec;
    const index = this.indexKey(nodeId);
    const stale = batch.full ? (await this.redis.smembers(index)).filter((room) => !batch.full!.has(room)) : [];
    const m = new ChunkedMulti(this.redis, MAX_COMMANDS_PER_MULTI);
    m.setExGet(`${this.prefix}presence:alive:${nodeId}`, '1', ttl);
    const touched = new Set<string>();
    if (batch.full) {
      for (const room of stale) m.del(this.roomNodeKey(room, nodeId));
      m.del(index);
      if (batch.full.size > 0) m.sadd(index, ...batch.full.keys());
      for (const [room, users] of batch.full) {
        const key = this.roomNodeKey(room, nodeId);
        m.del(key);
        if (users.length > 0) m.sadd(key, ...users);
        touched.add(room);
      }
    }
    for (const [room, users] of batch.removed) {
      m.srem(this.roomNodeKey(room, nodeId), ...users);
      touched.add(room);
    }
    if (batch.added.size > 0) m.sadd(index, ...batch.added.keys());
    for (const [room, users] of batch.added) {
      m.sadd(this.roomNodeKey(room, nodeId), ...users);
      touched.add(room);
    }
    if (batch.vacated.length > 0) m.srem(index, ...batch.vacated);
    for (const room of batch.refresh) touched.add(room);
    for (const room of touched) m.expire(this.roomNodeKey(room, nodeId), ttl);
    m.expire(index, ttl);
    m.zadd(`${this.prefix}presence:nodes`, Date.now(), nodeId);
    const res = await m.exec();
    return { lost: res[0] === null };
  }

  async members(room: string, exceptNode?: string): Promise<string[]> {
    const nodes = (await liveNodes(this.redis, `${this.prefix}presence:nodes`, this.ttlSec)).filter((n) => n !== exceptNode);
    if (nodes.length === 0) return [];
    const users = await this.redis.sunion(...nodes.map((n) => this.roomNodeKey(room, n)));
    return users.sort();
  }

  /** A node's rooms and their users (what removeNode is about to delete): two round trips. */
  async nodeRooms(nodeId: string): Promise<Map<string, string[]>> {
    const rooms = await this.redis.smembers(this.indexKey(nodeId));
    const out = new Map<string, string[]>();
    if (rooms.length === 0) return out;
    const p = this.redis.pipeline();
    for (const room of rooms) p.smembers(this.roomNodeKey(room, nodeId));
    const res = await execOrThrow(p);
    rooms.forEach((room, i) => {
      const users = res[i] as string[];
      if (users.length > 0) out.set(room, users);
    });
    return out;
  }

  async removeNode(nodeId: string, rooms: readonly string[]): Promise<void> {
    const index = this.indexKey(nodeId);
    const indexed = await this.redis.smembers(index);
    const m = this.redis.multi();
    for (const room of new Set([...indexed, ...rooms])) m.del(this.roomNodeKey(room, nodeId));
    m.del(index, `${this.prefix}presence:alive:${nodeId}`);
    m.zrem(`${this.prefix}presence:nodes`, nodeId);
    await execOrThrow(m);
  }
}
