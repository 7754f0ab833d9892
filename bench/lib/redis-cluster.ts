// Starts a private Redis Cluster (tests and bench): `masters` redis-server processes with
// `--cluster-enabled yes` (and `replicas` replicas each) on free ports, joined with
// `redis-cli --cluster create`, and stops it after. Each node's cluster bus listens on a port of its
// own (`cluster-port`, Redis >= 7), also free, so no port+10000 arithmetic is needed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { sampleProc } from './procs.js';
import { freePort, waitReady } from './redis-server.js';

const run = promisify(execFile);

export interface ClusterNode {
  readonly port: number;
  readonly pid: () => number | undefined;
  /** A plain client on this node (not cluster-aware): for CLUSTER, ROLE, INFO. */
  readonly client: Redis;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export interface RedisClusterServer {
  readonly nodes: readonly ClusterNode[];
  /** One seed URL (the gateway finds the others itself). */
  readonly url: string;
  /** Every node's URL, comma-separated (the seeds form of WSGATE_REDIS_URL). */
  readonly urls: string;
  /** A cluster client for assertions and bookkeeping (not the gateway's). */
  readonly client: Cluster;
  /** The nodes that are masters now. */
  masters(): Promise<ClusterNode[]>;
  /** Calls of one command since start, summed over every node (INFO commandstats). */
  calls(command: string): Promise<number>;
  /** CPU time of every redis-server process, ms (from /proc). */
  cpuMs(): number;
  pids(): number[];
  /**
   * A manual failover: CLUSTER FAILOVER on a replica of `master` (default: the master that owns
   * slot 0), then waits until every node agrees on the new master. Returns the promoted node.
   */
  failover(master?: ClusterNode): Promise<ClusterNode>;
  /** Waits until every live node reports cluster_state:ok and the same slot owners, and every replica is in sync. */
  settled(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Redis >= 7: `cluster-port`, shard channels and `CLUSTER SHARDS`-era tooling. */
async function requireRedis7(): Promise<void> {
  let out: string;
  try {
    out = (await run('redis-server', ['--version'])).stdout;
    await run('redis-cli', ['--version']);
  } catch {
    throw new Error('redis-server and redis-cli not found: the cluster tests and the bench start their own Redis Cluster (Debian/Ubuntu: apt-get install -y redis-server redis-tools).');
  }
  const major = Number(/v=(\d+)\./.exec(out)?.[1] ?? 0);
  if (major < 7) throw new Error(`Redis ${major} found: a Redis Cluster with shard channels needs Redis 7 or later`);
}

export async function startRedisCluster(opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<RedisClusterServer> {
  await requireRedis7();
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 1;
  const count = masters * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-'));
  const nodes: ClusterNode[] = [];
  const procs = new Map<number, ChildProcess>();
  const launch = async (port: number, busPort: number): Promise<void> => {
    const nodeDir = join(dir, String(port));
    await run('mkdir', ['-p', nodeDir]);
    const p = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000),
        // a replica with stale data may still be elected: the tests kill masters on purpose
        '--cluster-replica-validity-factor', '0', '--cluster-require-full-coverage', 'yes',
        '--repl-diskless-sync-delay', '0', '--save', '', '--appendonly', 'no', '--dir', nodeDir, '--loglevel', 'warning', '--maxclients', '100000',
      ],
      { stdio: 'ignore' },
    );
    procs.set(port, p);
    await waitReady(port);
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      await launch(port, busPort);
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: (t) => Math.min(t * 50, 500) });
      client.on('error', () => undefined);
      nodes.push({
        port,
        pid: () => procs.get(port)?.pid,
        client,
        kill: async () => {
          const p = procs.get(port);
          if (!p || p.exitCode !== null || p.signalCode !== null) return;
          await new Promise<void>((resolve) => {
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          });
        },
        restart: () => launch(port, busPort),
      });
    }
    // --cluster create assigns the first `masters` addresses as masters and the rest as their replicas.
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
  } catch (e) {
    for (const n of nodes) {
      n.client.disconnect();
      await n.kill();
    }
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const alive = (): ClusterNode[] => nodes.filter((n) => {
    const p = procs.get(n.port);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  });

  /**
   * The cluster as one node sees it: slot owners and who replicates whom, or undefined when it is
   * not ok or still learning (a node in handshake, or flagged failing). Every node must see the same
   * before a manual failover can win its election (the masters vote only for a replica they know).
   */
  const view = async (n: ClusterNode): Promise<string | undefined> => {
    const info = (await n.client.cluster('INFO')) as string;
    if (!/cluster_state:ok/.test(info)) return undefined;
    const lines = ((await n.client.cluster('NODES')) as string).trim().split('\n');
    const out: string[] = [];
    for (const line of lines) {
      const f = line.split(' ');
      const flags = f[2]!.split(',');
      if (flags.some((x) => x === 'handshake' || x === 'fail?' || x === 'noaddr')) return undefined;
      if (flags.includes('fail')) continue; // a dead node, known as dead
      const role = flags.includes('master') ? 'M' : 'S';
      out.push(`${f[1]!.split('@')[0]}:${role}:${f[3]}:${f.slice(8).join(' ')}`);
    }
    return out.sort().join('|');
  };

  const settled = async (timeoutMs = 20_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const views = await Promise.all(alive().map(view));
        if (views.every((v) => v !== undefined && v === views[0])) {
          let covered = 0;
          for (const entry of views[0]!.split('|')) {
            for (const range of entry.split(':').slice(4).join(':').split(' ').filter(Boolean)) {
              const [a, b] = range.split('-').map(Number);
              covered += (b ?? a!) - a! + 1;
            }
          }
          // and every replica's link to its master is up (a failover needs a synced replica)
          const roles = await Promise.all(alive().map((n) => n.client.role() as Promise<unknown[]>));
          if (covered === 16384 && roles.every((r) => r[0] !== 'slave' || r[3] === 'connected')) return;
        }
      } catch {
        // a node is restarting or failing over: ask again
      }
      if (Date.now() > deadline) throw new Error('redis cluster did not settle');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await settled();

  const client = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { redisOptions: { maxRetriesPerRequest: 2 }, retryDelayOnFailover: 100, slotsRefreshInterval: 1000 });
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the cluster client was not ready within 20 s')), 20_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    client.once('end', () => {
      clearTimeout(timer);
      reject(new Error('cluster client ended'));
    });
  });

  const masterNodes = async (): Promise<ClusterNode[]> => {
    const out: ClusterNode[] = [];
    for (const n of alive()) {
      try {
        const role = (await n.client.role()) as unknown[];
        if (role[0] === 'master') out.push(n);
      } catch {
        // not answering: not a master we can use
      }
    }
    return out;
  };

  const cpuMs = (): number => {
    let ms = 0;
    for (const n of nodes) {
      const pid = n.pid();
      if (pid === undefined) continue;
      ms += sampleProc(pid)?.cpuMs ?? 0;
    }
    return ms;
  };

  return {
    nodes,
    url: `redis://127.0.0.1:${nodes[0]!.port}`,
    urls: nodes.map((n) => `redis://127.0.0.1:${n.port}`).join(','),
    client,
    masters: masterNodes,
    async calls(command: string): Promise<number> {
      let total = 0;
      for (const n of alive()) {
        const m = new RegExp(`cmdstat_${command.toLowerCase()}:calls=(\\d+)`).exec(await n.client.info('commandstats'));
        total += m ? Number(m[1]) : 0;
      }
      return total;
    },
    cpuMs,
    pids: () => nodes.flatMap((n) => (n.pid() === undefined ? [] : [n.pid()!])),
    async failover(master?: ClusterNode): Promise<ClusterNode> {
      const target = master ?? (await ownerOf(0));
      const id = ((await target.client.cluster('MYID')) as string).trim();
      let replica: ClusterNode | undefined;
      for (const n of alive()) {
        if (n === target) continue;
        const role = (await n.client.role()) as unknown[];
        if (role[0] === 'slave' && role[2] === target.port) {
          const nodesOut = (await n.client.cluster('NODES')) as string;
          const mine = nodesOut.split('\n').find((l) => l.includes('myself'));
          if (mine?.split(' ')[3] === id) replica = n;
        }
      }
      if (!replica) throw new Error(`no replica of ${target.port}`);
      await replica.client.cluster('FAILOVER');
      const deadline = Date.now() + 20_000;
      while (((await replica.client.role()) as unknown[])[0] !== 'master') {
        if (Date.now() > deadline) throw new Error('failover did not complete');
        await new Promise((r) => setTimeout(r, 50));
      }
      await settled();
      return replica;
    },
    settled,
    async stop(): Promise<void> {
      client.disconnect();
      for (const n of nodes) {
        n.client.disconnect();
        await n.kill();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };

  async function ownerOf(slot: number): Promise<ClusterNode> {
    for (const n of await masterNodes()) {
      const slots = (await n.client.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
      const r = slots.find(([a, b]) => slot >= a && slot <= b);
      if (r && r[2][1] === n.port) return n;
    }
    throw new Error(`no master owns slot ${slot}`);
  }
}

