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

/**
 * A MULTI that becomes several when it grows past `max` commands: they are sent pipelined (one
 * round trip) but executed one after another, so Redis serves its other clients between them.
 * exec() resolves to every command's result, in order, or throws the first error.
 */
export class ChunkedMulti {
  private readonly chunks: ChainableCommander[] = [];
  private count = 0;

  constructor(
    private readonly redis: Redis,
    private readonly max: number,
  ) {}

  private current(): ChainableCommander {
    if (this.chunks.length === 0 || this.count >= this.max) {
      this.chunks.push(this.redis.multi());
      this.count = 0;
    }
    this.count++;
    return this.chunks.at(-1)!;
  }

  /** SET key value EX sec GET (the heartbeat that tells whether Redis lost the node's state) */
  setExGet(key: string, value: string, sec: number): this {
    this.current().set(key, value, 'EX', sec, 'GET');
    return this;
  }

  del(...keys: string[]): this {
    this.current().del(...keys);
    return this;
  }

  sadd(key: string, ...members: string[]): this {
    this.current().sadd(key, ...members);
    return this;
  }

  srem(key: string, ...members: string[]): this {
    this.current().srem(key, ...members);
    return this;
  }

  expire(key: string, sec: number): this {
    this.current().expire(key, sec);
    return this;
  }

  zadd(key: string, score: number, member: string): this {
    this.current().zadd(key, score, member);
    return this;
  }

  async exec(): Promise<unknown[]> {
    const results = await Promise.all(this.chunks.map((c) => execOrThrow(c)));
    return results.flat();
  }
}
