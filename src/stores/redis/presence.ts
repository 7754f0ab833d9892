// Presence in Redis. Layout (docs/REDIS.md):
//   <p>presence:nodes                        ZSET    nodeId -> last heartbeat (ms)
//   <p>presence:node:{N}:alive               STRING  EX ttl; absent -> Redis lost this node's state
//   <p>presence:node:{N}:rooms               SET     room keys this node has a set for; EX ttl
//   <p>presence:room:{R}:<nodeId>            SET     users of room R on that node; EX ttl
// {N} and {R} are hash tags (util.ts tag()): a node's own keys share a slot, and so do the
// per-node sets of one room, so a room's members are one SUNION in one slot, on a cluster too.
// The union is over live nodes, so a user on several nodes counts once, and a dead node's users
// vanish when its heartbeat is older than the TTL.
// One apply is one MULTI/EXEC on a single Redis (pipelined MULTIs of at most 4,096 commands for a big
// batch, so that Redis serves other clients between them; one pipeline per master on a cluster); its
// size follows the rooms that changed plus a refresh slice. A full rewrite reads the node's room index
// first (one more round trip) to delete the sets of rooms the node no longer has.
import type { ApplyResult, PresenceBatch, PresenceStore } from '../ports.js';
import type { RedisClient } from './client.js';
import { execGrouped, liveNodes, tag, type Command } from './util.js';

const MAX_COMMANDS_PER_MULTI = 4096;

export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlSec: number,
  ) {}

  private roomNodeKey(room: string, nodeId: string): string {
    return `${this.prefix}presence:room:${tag(room)}:${nodeId}`;
  }

  private indexKey(nodeId: string): string {
    return `${this.prefix}presence:node:${tag(nodeId)}:rooms`;
  }

  private aliveKey(nodeId: string): string {
    return `${this.prefix}presence:node:${tag(nodeId)}:alive`;
  }

  async apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult> {
    const ttl = this.ttlSec;
    const index = this.indexKey(nodeId);
    const stale = batch.full ? (await this.redis.smembers(index)).filter((room) => !batch.full!.has(room)) : [];
    const m: Command[] = [['set', this.aliveKey(nodeId), '1', 'EX', ttl, 'GET']];
    const touched = new Set<string>();
    if (batch.full) {
      for (const room of stale) m.push(['del', this.roomNodeKey(room, nodeId)]);
      m.push(['del', index]);
      if (batch.full.size > 0) m.push(['sadd', index, ...batch.full.keys()]);
      for (const [room, users] of batch.full) {
        const key = this.roomNodeKey(room, nodeId);
        m.push(['del', key]);
        if (users.length > 0) m.push(['sadd', key, ...users]);
        touched.add(room);
      }
    }
    for (const [room, users] of batch.removed) {
      m.push(['srem', this.roomNodeKey(room, nodeId), ...users]);
      touched.add(room);
    }
    if (batch.added.size > 0) m.push(['sadd', index, ...batch.added.keys()]);
    for (const [room, users] of batch.added) {
      m.push(['sadd', this.roomNodeKey(room, nodeId), ...users]);
      touched.add(room);
    }
    if (batch.vacated.length > 0) m.push(['srem', index, ...batch.vacated]);
    for (const room of batch.refresh) touched.add(room);
    for (const room of touched) m.push(['expire', this.roomNodeKey(room, nodeId), ttl]);
    m.push(['expire', index, ttl], ['zadd', `${this.prefix}presence:nodes`, Date.now(), nodeId]);
    const res = await execGrouped(this.redis, m, MAX_COMMANDS_PER_MULTI);
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
    // one room per slot on a cluster: grouped by master (a plain pipeline must stay in one slot there)
    const res = await execGrouped(this.redis, rooms.map((room): Command => ['smembers', this.roomNodeKey(room, nodeId)]), MAX_COMMANDS_PER_MULTI);
    rooms.forEach((room, i) => {
      const users = res[i] as string[];
      if (users.length > 0) out.set(room, users);
    });
    return out;
  }

  async removeNode(nodeId: string, rooms: readonly string[]): Promise<void> {
    const index = this.indexKey(nodeId);
    const indexed = await this.redis.smembers(index);
    const m: Command[] = [];
    for (const room of new Set([...indexed, ...rooms])) m.push(['del', this.roomNodeKey(room, nodeId)]);
    m.push(['del', index], ['del', this.aliveKey(nodeId)], ['zrem', `${this.prefix}presence:nodes`, nodeId]);
    await execGrouped(this.redis, m);
  }
}
