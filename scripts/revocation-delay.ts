// How long a revocation takes to reach open sockets: the seed's auth service writes
// `revoked:<jti>` with a plain SET, and every socket carrying that jti, on every node, must close
// with 4003 "Token revoked". This starts its own Redis (or Redis Cluster with --cluster) and
// --nodes gateway processes (the built dist/src/cli.js, default mirror mode), opens --sockets
// sockets per node for each of --revocations tokens, then revokes the tokens one after the other.
// A revocation's delay runs from just before the SET is sent to the last of its sockets' close
// frames (so it includes the SET's own round trip). Prints every delay's summary: median, p90, max.
//
//   npm run build && node dist/scripts/revocation-delay.js --revocations 100 --nodes 2 [--sockets 1] [--cluster] [--gap-ms 10]
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import type { Cluster, Redis } from 'ioredis';
import WebSocket from 'ws';
import { startRedisCluster, type RedisClusterServer } from '../bench/lib/redis-cluster.js';
import { startRedisServer, type RedisServer } from '../bench/lib/redis-server.js';
import { startTarget, type RunningTarget } from '../bench/lib/targets.js';

export interface DelayOptions {
  readonly revocations: number;
  readonly nodes: number;
  readonly sockets: number;
  readonly cluster: boolean;
  /** pause between two revocations, ms */
  readonly gapMs: number;
  readonly log?: (line: string) => void;
}

export interface DelaySummary {
  readonly revocations: number;
  readonly socketsPerRevocation: number;
  /** ms, sorted */
  readonly delays: readonly number[];
  readonly median: number;
  readonly p90: number;
  readonly max: number;
  readonly min: number;
  /** close frames other than 4003 "Token revoked" (must be 0) */
  readonly wrongCloses: number;
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

/** Opens a socket with `token`; resolves once its connected frame arrived, with a promise of its close. */
function open(port: number, token: string): Promise<{ closed: Promise<{ code: number; reason: string; at: number }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['wsgate.v1.json'], { headers: { authorization: `Bearer ${token}` } });
    const closed = new Promise<{ code: number; reason: string; at: number }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString(), at: performance.now() })));
    ws.once('message', () => resolve({ closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

export async function measureRevocationDelay(o: DelayOptions): Promise<DelaySummary> {
  const log = o.log ?? (() => undefined);
  const secret = randomBytes(32).toString('base64url');
  let single: RedisServer | undefined;
  let cluster: RedisClusterServer | undefined;
  let target: RunningTarget | undefined;
  try {
    if (o.cluster) cluster = await startRedisCluster();
    else single = await startRedisServer();
    const url = cluster ? cluster.urls : single!.url;
    const writer: Redis | Cluster = cluster ? cluster.client : single!.client;
    target = await startTarget('wsgate', { secret, redisUrl: url, env: { WSGATE_HOST: '127.0.0.1', WSGATE_REDIS_CLUSTER: String(o.cluster), WSGATE_KEY_PREFIX: 'delay:' } }, o.nodes);
    // the mirror of every node is ready before the clock starts
    for (const port of target.ports) {
      for (;;) {
        const m = /wsgate_revocation_mirror_ready (\d)/.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
        if (m?.[1] === '1') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3600_000 });
    const run = randomBytes(4).toString('hex');
    const jtis = Array.from({ length: o.revocations }, (_, i) => `delay-${run}-${i}`);
    log(`opening ${o.revocations * o.nodes * o.sockets} sockets on ${o.nodes} node(s) (${o.cluster ? 'Redis Cluster' : 'single Redis'})`);
    const sockets = await Promise.all(
      jtis.map(async (jti, i) => {
        const token = sign({ sub: `user${i}`, tenant_id: 'delay', jti, permissions: [] });
        const per: Array<{ closed: Promise<{ code: number; reason: string; at: number }> }> = [];
        for (const port of target!.ports) for (let k = 0; k < o.sockets; k++) per.push(await open(port, token));
        return per;
      }),
    );
    const delays: number[] = [];
    let wrongCloses = 0;
    for (let i = 0; i < jtis.length; i++) {
      const t0 = performance.now();
      await writer.set(`revoked:${jtis[i]}`, '1', 'EX', 600);
      const closes = await Promise.all(sockets[i]!.map((s) => s.closed));
      for (const c of closes) if (c.code !== 4003 || c.reason !== 'Token revoked') wrongCloses++;
      delays.push(Math.max(...closes.map((c) => c.at)) - t0);
      if (o.gapMs > 0) await new Promise((r) => setTimeout(r, o.gapMs));
    }
    const sorted = [...delays].sort((x, y) => x - y);
    return {
      revocations: o.revocations,
      socketsPerRevocation: o.nodes * o.sockets,
      delays: sorted,
      median: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      max: sorted[sorted.length - 1]!,
      min: sorted[0]!,
      wrongCloses,
    };
  } finally {
    await target?.stop();
    await cluster?.stop();
    await single?.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    strict: true,
    options: {
      revocations: { type: 'string', default: '100' },
      nodes: { type: 'string', default: '2' },
      sockets: { type: 'string', default: '1' },
      cluster: { type: 'boolean', default: false },
      'gap-ms': { type: 'string', default: '10' },
    },
  });
  const o: DelayOptions = {
    revocations: Number(values.revocations),
    nodes: Number(values.nodes),
    sockets: Number(values.sockets),
    cluster: values.cluster === true,
    gapMs: Number(values['gap-ms']),
    log: (line) => process.stderr.write(line + '\n'),
  };
  measureRevocationDelay(o).then(
    (s) => {
      process.stdout.write(
        `${s.revocations} revocations, ${s.socketsPerRevocation} sockets each on ${o.nodes} node(s), ${o.cluster ? 'Redis Cluster' : 'single Redis'}: ` +
          `median ${s.median.toFixed(2)} ms, p90 ${s.p90.toFixed(2)} ms, max ${s.max.toFixed(2)} ms, min ${s.min.toFixed(2)} ms; closes other than 4003: ${s.wrongCloses}\n`,
      );
      process.exit(s.wrongCloses === 0 && s.max < 1000 ? 0 : 1);
    },
    (e: unknown) => {
      process.stderr.write(`revocation-delay failed: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
