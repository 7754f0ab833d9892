// The Redis a bench run uses, whichever it is: a private redis-server, or a private Redis Cluster
// (`--store redis-cluster`: masters only, no replicas, so its CPU is the deployment's work and not
// replication's). Scenarios see one shape: the URL and environment for wsgate, a client, the
// command count and the CPU of every Redis process.
import type { Cluster, Redis } from 'ioredis';
import { sampleProc } from './procs.js';
import { startRedisCluster } from './redis-cluster.js';
import { startRedisServer } from './redis-server.js';

export interface BenchRedis {
  readonly kind: 'redis' | 'redis-cluster';
  /** WSGATE_REDIS_URL (a cluster's seeds, comma-separated) */
  readonly url: string;
  /** the environment wsgate needs besides the URL */
  readonly env: Readonly<Record<string, string>>;
  readonly client: Redis | Cluster;
  /** commands executed since start, every node summed (INFO commandstats, INFO itself excluded) */
  totalCalls(): Promise<number>;
  /** CPU time of every Redis process, ms; undefined when none can be read */
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

export async function startBenchRedis(kind: 'redis' | 'redis-cluster', masters = 3): Promise<BenchRedis> {
  if (kind === 'redis') {
    const r = await startRedisServer();
    return {
      kind,
      url: r.url,
      env: {},
      client: r.client,
      totalCalls: () => r.totalCalls(),
      cpuMs: () => {
        const pid = r.pid();
        return pid === undefined ? undefined : sampleProc(pid)?.cpuMs;
      },
      stop: () => r.stop(),
    };
  }
  const c = await startRedisCluster({ masters, replicas: 0 });
  return {
    kind,
    url: c.urls,
    env: { WSGATE_REDIS_CLUSTER: 'true' },
    client: c.client,
    totalCalls: async () => {
      let n = 0;
      for (const node of c.nodes) {
        for (const m of (await node.client.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (m[1] !== 'info') n += Number(m[2]);
      }
      return n;
    },
    cpuMs: () => c.cpuMs(),
    stop: () => c.stop(),
  };
}
