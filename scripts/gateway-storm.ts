// An upgrade storm against the built gateway, counting the sockets that uWS closes right after
// their connected frame (uWebSockets #1928, docs/UWS-1928.md): each client waits for its frame,
// then for 20 ms; a close in between is a lost socket. The gateway's own count
// (wsgate_upgrades_closed_by_uws_total) is printed next to the clients' one.
//
//   node dist/scripts/gateway-storm.js --conns 20000 --concurrency 200 [--redis redis://...] [--mode mirror|lookup] [--msgpack]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import WebSocket from 'ws';

const { values } = parseArgs({
  strict: true,
  options: {
    conns: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '200' },
    redis: { type: 'string' },
    mode: { type: 'string', default: 'mirror' },
    msgpack: { type: 'boolean', default: false },
  },
});
const N = Number(values.conns);
const C = Number(values.concurrency);
const SECRET = 'gateway-storm-secret-0123456789abcdefghijkl';
const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const gw = spawn(process.execPath, [cli], {
  env: {
    ...process.env,
    WSGATE_PORT: '0',
    WSGATE_HOST: '127.0.0.1',
    WSGATE_JWT_SECRET: SECRET,
    WSGATE_LOG_LEVEL: 'info',
    WSGATE_MAX_PENDING_PER_ADDRESS: '1000000',
    WSGATE_RATE_LIMIT: '0',
    WSGATE_WORKERS: '1',
    WSGATE_REVOCATION_MODE: values.mode,
    ...(values.redis ? { WSGATE_REDIS_URL: values.redis } : {}),
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const port = await new Promise<number>((resolve) => {
  let out = '';
  const onData = (d: Buffer): void => {
    out += d.toString();
    const m = /"msg":"wsgate listening".*?"port":(\d+)|"port":(\d+).*?"msg":"wsgate listening"/.exec(out);
    if (m) resolve(Number(m[1] ?? m[2]));
  };
  gw.stdout!.on('data', onData);
  gw.stderr!.on('data', onData);
});
const sign = createSigner({ key: SECRET });
let next = 0;
let ok = 0;
let lost = 0;
let failed = 0;
const one = (): Promise<void> => {
  const i = next++;
  const token = sign({ sub: `u${i}`, tenant_id: 't', jti: `storm-${i}`, exp: Math.floor(Date.now() / 1000) + 600 });
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, [values.msgpack ? 'wsgate.v1.msgpack' : 'wsgate.v1.json'], { headers: { authorization: `Bearer ${token}` } });
    let got = false;
    let mine = false;
    ws.on('message', () => {
      if (got) return;
      got = true;
      setTimeout(() => {
        mine = true;
        ws.close();
      }, 20);
    });
    ws.on('close', () => {
      if (got && !mine) lost++;
      else if (got) ok++;
      else failed++;
      resolve();
    });
    ws.on('error', () => undefined);
  });
};
const t0 = Date.now();
await Promise.all(Array.from({ length: C }, async () => {
  while (next < N) await one();
}));
const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const closedByUws = Number(/wsgate_upgrades_closed_by_uws_total (\d+)/.exec(metrics)?.[1] ?? NaN);
const roundTrips = Number(/wsgate_revocation_round_trips (\d+)/.exec(metrics)?.[1] ?? NaN);
const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { uws: { build: string; version: string } };
process.stdout.write(JSON.stringify({ build: health.uws.build, version: health.uws.version, mode: values.redis ? values.mode : 'memory', conns: N, ok, lost, failed, closedByUws, revocationRoundTrips: roundTrips, ms: Date.now() - t0 }) + '\n');
gw.kill('SIGTERM');
