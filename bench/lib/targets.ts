// The servers a scenario runs against, each as its own process (or, for wsgate with
// --gateway-procs N, N processes on one Redis, each on its own port with its own node id): wsgate
// (dist/src/cli.js), the bare uWebSockets.js, naive and Socket.IO 4 baselines (bench/baselines/).
// wsgate with --gateway-workers W is one process tree (a supervisor and W workers on one port); bare
// uWS with W > 1 is W processes listening on one port (SO_REUSEPORT), so that it can hold as many
// connections as wsgate's workers (each process has its own descriptor limit).
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Target } from './dialects.js';
import { probePort } from '../../src/server/listen.js';
import { spawnNode } from './procs.js';

// From dist/bench/lib/ (the built bench) or from bench/lib/ (a test importing the source): the built files.
const dist = (p: string): string => fileURLToPath(new URL(`${import.meta.url.includes('/dist/bench/') ? '../../' : '../../dist/'}${p}`, import.meta.url));

/** One server process (the root of its process tree: a supervisor's workers are sampled with it). */
export interface RunningProcess {
  readonly port: number;
  /** wsgate: its server API's port (docs/API.md); bare uWS: its one port, which serves the same routes; else undefined */
  readonly adminPort: number | undefined;
  readonly pid: number;
  readonly nodeId: string | undefined;
  /** What the server said about itself at start (wsgate: uWS build). */
  readonly info: Record<string, unknown>;
  readonly output: string[];
  stop(): Promise<void>;
}

export interface RunningTarget {
  readonly target: Target;
  /** workers per process (wsgate: WSGATE_WORKERS), or bare uWS processes sharing one port */
  readonly workers: number;
  readonly procs: readonly RunningProcess[];
  /** one per process; the generator spreads connections over them */
  readonly ports: readonly number[];
  /** the first process's port (/healthz in the http scenario) */
  readonly port: number;
  /** the first process's server API port (the http scenario's admin runs), where the target has one */
  readonly adminPort: number | undefined;
  /** the API key the server API takes (wsgate) */
  readonly adminKey: string;
  readonly info: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Starts `procs` processes of `target` (more than one: wsgate only, each with its own WSGATE_NODE_ID),
 * each with `workers` workers (wsgate: WSGATE_WORKERS; bare uWS: that many processes on one port).
 */
export async function startTarget(target: Target, opts: TargetOptions, procs = 1, workers = 1): Promise<RunningTarget> {
  if (procs > 1 && target !== 'wsgate') throw new Error(`only wsgate runs as several processes, not ${target}`);
  if (workers > 1 && target !== 'wsgate' && target !== 'uws') throw new Error(`only wsgate and bare uWS run several workers, not ${target}`);
  const shared = target === 'uws' && workers > 1 ? String(await probePort('0.0.0.0', 0)) : undefined;
  const env = (i: number): Record<string, string> => ({
    ...opts.env,
    ...(target === 'wsgate' ? { WSGATE_WORKERS: String(workers) } : {}),
    ...(procs > 1 ? { WSGATE_NODE_ID: `bench-${target}-${i}` } : {}),
    ...(shared ? { WSGATE_PORT: shared } : {}),
  });
  const count = shared ? workers : procs;
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startProcess(target, { ...opts, env: env(i) })));
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((p) => p.stop()));
    throw failed.reason;
  }
  return {
    target,
    workers,
    procs: ok,
    ports: [...new Set(ok.map((p) => p.port))],
    port: ok[0]!.port,
    adminPort: ok[0]!.adminPort,
    adminKey: adminKeyOf(opts.secret),
    info: ok[0]!.info,
    stop: async () => {
      await Promise.all(ok.map((p) => p.stop()));
    },
  };
}

/** The server API key of a run: derived from the run's random secret, so nothing else needs passing. */
export const adminKeyOf = (secret: string): string => `bench-admin-${secret}`;

export interface TargetOptions {
  readonly secret: string;
  readonly redisUrl: string | undefined;
  readonly env?: Record<string, string>;
  /** serve TLS with this certificate (wsgate and bare uWS) */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

function startProcess(target: Target, opts: TargetOptions): Promise<RunningProcess> {
  const script = target === 'wsgate' ? dist('src/cli.js') : dist(`bench/baselines/${target}-server.js`);
  const env: Record<string, string> = {
    WSGATE_PORT: '0',
    // Every loopback address: the generator spreads connections over 127.0.0.x destinations.
    WSGATE_HOST: '0.0.0.0',
    WSGATE_JWT_SECRET: opts.secret,
    WSGATE_LOG_LEVEL: 'info',
    WSGATE_REDIS_URL: opts.redisUrl ?? '',
    // Bench tokens live long and are reused across runs; expiry pushes would only add noise.
    WSGATE_TOKEN_EXPIRING_SEC: '0',
    WSGATE_IDLE_TIMEOUT_SEC: '960',
    WSGATE_MAX_BACKPRESSURE_BYTES: String(64 * 1024 * 1024),
    // The per-connection request and byte limits are a policy, not a cost: the bench measures throughput.
    WSGATE_RATE_LIMIT: '0',
    WSGATE_RATE_LIMIT_BYTES: '0',
    // Every generator connection comes from 127.0.0.1: the per-address pending bound would cap the storm.
    WSGATE_MAX_PENDING_PER_ADDRESS: '1000000',
    // The server API on a free port, unlimited (the http scenario drives it; other scenarios never call it).
    WSGATE_ADMIN_PORT: '0',
    WSGATE_ADMIN_KEYS: adminKeyOf(opts.secret),
    WSGATE_ADMIN_RATE_LIMIT: '0',
    ...(opts.tls ? { WSGATE_TLS_CERT_FILE: opts.tls.certFile, WSGATE_TLS_KEY_FILE: opts.tls.keyFile } : {}),
    // No load balancer in front: a stop needs no grace (the drain scenario sets its own).
    WSGATE_DRAIN_GRACE_SEC: '0',
    WSGATE_DRAIN_SEC: '0',
    ...(opts.env ?? {}),
  };
  // WSGATE_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers only.
  const nodeArgs = (process.env.WSGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // WSGATE_BENCH_WSGATE_NODE_ARGS: node flags for wsgate only (to measure a flag's effect against unchanged baselines)
  if (target === 'wsgate') nodeArgs.push(...(process.env.WSGATE_BENCH_WSGATE_NODE_ARGS ?? '').split(' ').filter(Boolean));
  const proc: ChildProcess = spawnNode(script, [], env, ['ignore', 'pipe', 'pipe'], nodeArgs);
  const output: string[] = [];
  const info: Record<string, unknown> = {};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${target} did not start:\n${output.join('\n')}`)), 20_000);
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (output.length < 200) output.push(line);
        let j: Record<string, unknown> | undefined;
        try {
          j = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (j.msg === 'uWebSockets.js loaded') Object.assign(info, { uwsBuild: j.build, uwsVersion: j.version });
        if (typeof j.msg === 'string' && /listening/.test(j.msg) && typeof j.port === 'number') {
          clearTimeout(timer);
          resolve({
            port: j.port,
            adminPort: typeof j.adminPort === 'number' ? j.adminPort : target === 'uws' ? j.port : undefined,
            nodeId: opts.env?.WSGATE_NODE_ID,
            pid: proc.pid!,
            info,
            output,
            stop: () =>
              new Promise<void>((res) => {
                if (proc.exitCode !== null || proc.signalCode !== null) return res();
                const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
                proc.once('exit', () => {
                  clearTimeout(kill);
                  res();
                });
                proc.kill('SIGTERM');
              }),
          });
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${target} exited (${code}) before listening:\n${output.join('\n')}`));
    });
  });
}
