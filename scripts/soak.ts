// npm run soak -- [--minutes 30] [--conns 200] [--churn 20] [--publish 100] [--refresh 5] [--out DIR]
// A steady mix against a wsgate process on its own Redis: connection churn (connect/disconnect
// per second), fan-out publishes, token refreshes. Every 10 s it records the gateway's RSS, heap,
// active handles and event-loop delay (from GET /metrics). It fails (exit 1) if RSS after
// warm-up (the first 20% of the run, at least 1 minute) grows by more than 5%.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSigner } from 'fast-jwt';
import WebSocket from 'ws';
import { startRedisServer } from '../bench/lib/redis-server.js';

const argv = process.argv.slice(2);
const arg = (k: string, d: number): number => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const minutes = arg('minutes', 30);
const conns = arg('conns', 200);
const churnPerSec = arg('churn', 20);
const publishPerSec = arg('publish', 100);
const refreshPerSec = arg('refresh', 5);
// Every soak token is new, so the verifier cache fills at churn + refresh entries/s; a run judges
// steady state only once the (bounded) cache is full, so the soak caps it below the warm-up's intake.
const cacheSize = arg('cache', 2000);
const outIdx = argv.indexOf('--out');
const outDir = resolve(outIdx >= 0 ? argv[outIdx + 1]! : 'bench/results');

interface Sample { t: number; rssMB: number; heapMB: number; handles: number; loopP99ms: number; loopMaxMs: number; conns: number; sent: number; received: number; errors: number }

async function main(): Promise<void> {
  const redis = await startRedisServer();
  const secret = randomUUID() + randomUUID();
  const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
  const gw = spawn(process.execPath, [cli], {
    env: { ...process.env, WSGATE_PORT: '0', WSGATE_HOST: '127.0.0.1', WSGATE_JWT_SECRET: secret, WSGATE_REDIS_URL: redis.url, WSGATE_LOG_LEVEL: 'info', WSGATE_TOKEN_EXPIRING_SEC: '0', WSGATE_JWT_CACHE_SIZE: String(cacheSize), WSGATE_WORKERS: '1', WSGATE_DRAIN_GRACE_SEC: '0', WSGATE_DRAIN_SEC: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((res, rej) => {
    gw.stdout!.on('data', (d: Buffer) => {
      const m = /"msg":"wsgate listening".*?"port":(\d+)|"port":(\d+).*"msg":"wsgate listening"/.exec(d.toString());
      if (m) res(Number(m[1] ?? m[2]));
    });
    gw.once('exit', (c) => rej(new Error(`gateway exited ${c}`)));
  });
  gw.stdout!.resume();
  const sign = createSigner({ key: secret, expiresIn: 4 * 3600_000 });
  const token = (sub: string): string => sign({ sub, tenant_id: 'soak', jti: randomUUID(), permissions: ['*:**'] });
  const url = `ws://127.0.0.1:${port}/ws`;
  const live = new Set<WebSocket>();
  let sent = 0;
  let received = 0;
  let errors = 0;
  let seq = 0;
  const open = (): void => {
    const sub = `u${seq++ % 1000}`;
    const ws = new WebSocket(url, ['wsgate.v1.json'], { headers: { authorization: `Bearer ${token(sub)}` } });
    (ws as WebSocket & { sub?: string }).sub = sub;
    ws.on('message', (d) => {
      received++;
      const m = JSON.parse(d.toString()) as { type: string };
      if (m.type === 'connected') {
        live.add(ws);
        ws.send(JSON.stringify({ id: 1, type: 'join', rooms: [`room/${seq % 20}`] }));
      } else if (m.type === 'error') errors++;
    });
    ws.on('error', () => errors++);
    ws.on('close', () => live.delete(ws));
  };
  for (let i = 0; i < conns; i++) open();
  const pick = (): (WebSocket & { sub?: string }) | undefined => {
    const arr = [...live];
    return arr[Math.floor(Math.random() * arr.length)];
  };
  /** Closes a random open socket (taken out of the pool at once, so it is not picked twice). */
  const closeOne = (): void => {
    const ws = pick();
    if (!ws) return;
    live.delete(ws);
    ws.close();
  };
  let id = 10;
  const timers = [
    setInterval(() => {
      for (let i = 0; i < churnPerSec / 10; i++) {
        closeOne();
        open();
      }
    }, 100),
    setInterval(() => {
      for (let i = 0; i < publishPerSec / 10; i++) {
        const ws = pick();
        if (ws?.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ id: id++, type: 'publish', room: `room/${id % 20}`, data: { t: Date.now(), pad: 'x'.repeat(100) } }));
          sent++;
        }
      }
    }, 100),
    setInterval(() => {
      for (let i = 0; i < refreshPerSec; i++) {
        const ws = pick();
        if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id: id++, type: 'token:refresh', token: token(ws.sub!) }));
      }
    }, 1000),
  ];
  const samples: Sample[] = [];
  const t0 = Date.now();
  const gauge = (text: string, name: string): number => Number(new RegExp(`^wsgate_${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  const sample = async (): Promise<void> => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const s: Sample = {
      t: Math.round((Date.now() - t0) / 1000),
      rssMB: gauge(text, 'process_rss_bytes') / 1048576,
      heapMB: gauge(text, 'process_heap_used_bytes') / 1048576,
      handles: gauge(text, 'process_active_resources'),
      loopP99ms: gauge(text, 'event_loop_delay_p99_ms'),
      loopMaxMs: gauge(text, 'event_loop_delay_max_ms'),
      conns: gauge(text, 'connections'),
      sent,
      received,
      errors,
    };
    samples.push(s);
    process.stderr.write(`[${s.t}s] rss=${s.rssMB.toFixed(1)}MB heap=${s.heapMB.toFixed(1)}MB handles=${s.handles} loop p99=${s.loopP99ms.toFixed(1)}ms conns=${s.conns} published=${sent} received=${received} errors=${errors}\n`);
  };
  const durationMs = minutes * 60_000;
  await new Promise<void>((done) => {
    const iv = setInterval(() => {
      void sample().then(() => {
        if (Date.now() - t0 >= durationMs) {
          clearInterval(iv);
          done();
        }
      });
    }, Math.min(10_000, Math.max(1000, durationMs / 20)));
  });
  for (const t of timers) clearInterval(t);
  for (const ws of live) ws.terminate();
  gw.kill('SIGTERM');
  await redis.stop();

  const warmupS = Math.max(60, (minutes * 60) / 5);
  // Runs shorter than the warm-up (smoke runs) judge their second half.
  const measured = samples.filter((s) => s.t >= warmupS);
  const after = measured.length >= 2 ? measured : samples.slice(Math.floor(samples.length / 2));
  const base = after[0]!.rssMB;
  const tail = after.slice(-3);
  const end = tail.reduce((a, s) => a + s.rssMB, 0) / tail.length;
  const growth = base > 0 ? (end - base) / base : 0;
  const passed = growth <= 0.05 && errors === 0;
  const summary = { minutes, conns, churnPerSec, publishPerSec, refreshPerSec, cacheSize, warmupS, rssAfterWarmupMB: base, rssEndMB: end, rssGrowth: growth, errors, published: sent, received, passed, samples };
  const dir = join(outDir, `${new Date(t0).toISOString().replace(/[:.]/g, '-')}-soak`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'soak.json'), JSON.stringify(summary, null, 2));
  process.stdout.write(`soak ${minutes} min: RSS ${base.toFixed(1)} MB after warm-up -> ${end.toFixed(1)} MB (${(growth * 100).toFixed(2)}%), heap ${samples.at(-1)!.heapMB.toFixed(1)} MB, handles ${samples.at(-1)!.handles}, loop p99 max ${Math.max(...samples.map((s) => s.loopP99ms)).toFixed(1)} ms, errors ${errors}: ${passed ? 'PASS' : 'FAIL'}\n${join(dir, 'soak.json')}\n`);
  process.exit(passed ? 0 : 1);
}

void main();
