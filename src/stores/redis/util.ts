import calculateSlot from 'cluster-key-slot';
import type { ChainableCommander, Cluster } from 'ioredis';
import { keyOf } from '../../keys/keys.js';
import { StoreUnavailable } from '../ports.js';
import { isCluster, type RedisClient } from './client.js';

/** Runs a pipeline/MULTI and returns its results, throwing the first command error. */
export async function execOrThrow(p: ChainableCommander): Promise<unknown[]> {
  const res = await p.exec();
  if (!res) throw new Error('transaction aborted');
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

/** Node ids whose heartbeat in `key` is younger than `ttlSec`; older ones are pruned. One key: one slot. */
export async function liveNodes(redis: RedisClient, key: string, ttlSec: number): Promise<string[]> {
  const cutoff = Date.now() - ttlSec * 1000;
  const res = await execOrThrow(redis.multi().zremrangebyscore(key, '-inf', `(${cutoff}`).zrangebyscore(key, cutoff, '+inf'));
  return res[1] as string[];
}

/**
 * A Redis Cluster hash tag for the keys of one thing (a node, a room, a tenant): every key that
 * carries `{<tag>}` lives in the slot of the tag alone, so multi-key commands and MULTI on them stay
 * in one slot. The tag is keyOf(part), which starts with a digit: never the empty tag `{}` (Redis
 * would then hash the whole key). A part with a `}` in it ends the tag early, but every key of the
 * same part shares the same text up to there, so they still share a slot.
 */
export function tag(part: string): string {
  return `{${keyOf(part)}}`;
}

/** One command of a grouped batch: its name, its (only) key, its arguments. */
export type Command = readonly [name: string, key: string, ...args: ReadonlyArray<string | number | Buffer>];

/** The slot-allocation group (master and replicas) that serves `key`'s slot now; throws when the client does not know it yet. */
export function groupOf(cluster: Cluster, key: string | Buffer): string {
  const nodes = cluster.slots[calculateSlot(key)];
  if (!nodes || nodes.length === 0) throw new StoreUnavailable('redis cluster: slot owners unknown');
  return nodes.join(';');
}

/**
 * Commands on keys of any slots, as few round trips as the deployment allows: on a single Redis one
 * MULTI/EXEC (atomic, one round trip); on a cluster one pipeline per master, sent in parallel (not
 * atomic across masters: every batch we send is idempotent and is retried whole after a failure).
 * Results in the order of `commands`; the first command error is thrown. `maxPerMulti` splits a big
 * batch on a single Redis into several MULTIs (then not atomic as a whole: every batch we send is
 * idempotent).
 */
export async function execGrouped(redis: RedisClient, commands: readonly Command[], maxPerMulti = Infinity): Promise<unknown[]> {
  if (commands.length === 0) return [];
  if (!isCluster(redis)) {
    if (commands.length <= maxPerMulti) return execOrThrow(redis.multi(commands as unknown as string[][]));
    // several MULTIs, pipelined (one round trip) and executed one after another: Redis serves its
    // other clients between them (a full rewrite of 50,000 rooms is not one 150,000-command block)
    const chunks: Array<Promise<unknown[]>> = [];
    for (let i = 0; i < commands.length; i += maxPerMulti) chunks.push(execOrThrow(redis.multi(commands.slice(i, i + maxPerMulti) as unknown as string[][])));
    return (await Promise.all(chunks)).flat();
  }
  const groups = new Map<string, number[]>();
  commands.forEach((c, i) => {
    const g = groupOf(redis, c[1]);
    const list = groups.get(g);
    if (list) list.push(i);
    else groups.set(g, [i]);
  });
  const out = new Array<unknown>(commands.length);
  await Promise.all(
    [...groups.values()].map(async (idx) => {
      const res = await execOrThrow(redis.pipeline(idx.map((i) => commands[i]!) as unknown as string[][]));
      idx.forEach((i, k) => (out[i] = res[k]));
    }),
  );
  return out;
}
