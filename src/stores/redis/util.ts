import type { ChainableCommander, Redis } from 'ioredis';

/** Runs a pipeline/MULTI and returns its results, throwing the first command error. */
export async function execOrThrow(p: ChainableCommander): Promise<unknown[]> {
  const res = await p.exec();
  if (!res) throw new Error('transaction aborted');
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

/** Node ids whose heartbeat in `key` is younger than `ttlSec`; older ones are pruned. */
export async function liveNodes(redis: Redis, key: string, ttlSec: number): Promise<string[]> {
  const cutoff = Date.now() - ttlSec * 1000;
  const res = await execOrThrow(redis.multi().zremrangebyscore(key, '-inf', `(${cutoff}`).zrangebyscore(key, cutoff, '+inf'));
  return res[1] as string[];
}
