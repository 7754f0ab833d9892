// What per-room bus channels cost when rooms come and go: --clients sockets on one gateway process
// (on its own Redis) each join a room nobody else is in and leave it again, --iterations times. With
// WSGATE_BUS_CHANNELS=room every such join subscribes the room's channel before it is acknowledged
// and every leave unsubscribes it (batched per event-loop turn); with `single` neither touches Redis.
// Prints join+leave pairs per second, the join ack's latency, and Redis and gateway CPU per pair.
//
//   npm run build && node dist/scripts/room-churn.js --channels room|single [--clients 200] [--iterations 50]
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import WebSocket from 'ws';
import { sampleProc } from '../bench/lib/procs.js';
import { startRedisServer } from '../bench/lib/redis-server.js';
import { startTarget } from '../bench/lib/targets.js';

export interface ChurnResult {
  readonly pairs: number;
  readonly perSec: number;
  readonly joinAckP50Ms: number;
  readonly joinAckP99Ms: number;
  readonly redisCpuUsPerPair: number;
  readonly gatewayCpuUsPerPair: number;
  readonly subscribeCommands: number;
}

export async function measureRoomChurn(channels: 'room' | 'single', clients: number, iterations: number): Promise<ChurnResult> {
  const secret = randomBytes(32).toString('base64url');
  const redis = await startRedisServer();
  const target = await startTarget('wsgate', { secret, redisUrl: redis.url, env: { WSGATE_BUS_CHANNELS: channels, WSGATE_HOST: '127.0.0.1' } }, 1).catch(async (e: unknown) => {
    await redis.stop();
    throw e;
  });
  try {
    const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 3600_000 });
    const sockets = await Promise.all(
      Array.from(
        { length: clients },
        (_, i) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${target.port}/ws`, ['wsgate.v1.json'], { headers: { authorization: `Bearer ${sign({ sub: `u${i}`, tenant_id: 'churn', jti: `churn-${i}`, permissions: ['*:**'] })}` } });
            ws.once('message', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    let seq = 0;
    const request = (ws: WebSocket, msg: Record<string, unknown>): Promise<void> =>
      new Promise((resolve) => {
        const id = ++seq;
        const on = (d: Buffer): void => {
          if ((JSON.parse(d.toString()) as { ref?: number }).ref !== id) return;
          ws.off('message', on);
          resolve();
        };
        ws.on('message', on);
        ws.send(JSON.stringify({ ...msg, id }));
      });
    const redisPid = redis.pid()!;
    const gwPid = target.procs[0]!.pid;
    const r0 = sampleProc(redisPid)!.cpuMs;
    const g0 = sampleProc(gwPid)!.cpuMs;
    const subs0 = await redis.calls('subscribe');
    const t0 = performance.now();
    const latencies: number[] = [];
    await Promise.all(
      sockets.map(async (ws, i) => {
        for (let k = 0; k < iterations; k++) {
          const room = `churn/${i}/${k}`;
          const a = performance.now();
          await request(ws, { type: 'join', rooms: [room] });
          latencies.push(performance.now() - a);
          await request(ws, { type: 'leave', rooms: [room] });
        }
      }),
    );
    const elapsed = performance.now() - t0;
    const pairs = clients * iterations;
    latencies.sort((x, y) => x - y);
    const result: ChurnResult = {
      pairs,
      perSec: (pairs * 1000) / elapsed,
      joinAckP50Ms: latencies[Math.floor(pairs / 2)]!,
      joinAckP99Ms: latencies[Math.floor(pairs * 0.99)]!,
      redisCpuUsPerPair: ((sampleProc(redisPid)!.cpuMs - r0) * 1000) / pairs,
      gatewayCpuUsPerPair: ((sampleProc(gwPid)!.cpuMs - g0) * 1000) / pairs,
      subscribeCommands: (await redis.calls('subscribe')) - subs0,
    };
    for (const ws of sockets) ws.terminate();
    return result;
  } finally {
    await target.stop();
    await redis.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ strict: true, options: { channels: { type: 'string', default: 'room' }, clients: { type: 'string', default: '200' }, iterations: { type: 'string', default: '50' } } });
  if (values.channels !== 'room' && values.channels !== 'single') throw new Error('--channels room|single');
  measureRoomChurn(values.channels, Number(values.clients), Number(values.iterations)).then(
    (r) => {
      process.stdout.write(
        `WSGATE_BUS_CHANNELS=${values.channels}: ${r.pairs} join+leave of a room new to the node: ${r.perSec.toFixed(0)}/s, join ack p50 ${r.joinAckP50Ms.toFixed(2)} ms p99 ${r.joinAckP99Ms.toFixed(2)} ms, ` +
          `Redis CPU ${r.redisCpuUsPerPair.toFixed(2)} µs and gateway CPU ${r.gatewayCpuUsPerPair.toFixed(1)} µs per pair, ${r.subscribeCommands} SUBSCRIBE commands\n`,
      );
    },
    (e: unknown) => {
      process.stderr.write(`room-churn failed: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
