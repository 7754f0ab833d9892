// The servers a scenario runs against, each as its own process: wsgate (dist/src/cli.js), the
// bare uWebSockets.js baseline and the Socket.IO 4 baseline (bench/baselines/).
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Target } from './dialects.js';
import { spawnNode } from './procs.js';

const dist = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));

export interface RunningTarget {
  readonly target: Target;
  readonly port: number;
  readonly pid: number;
  /** What the server said about itself at start (wsgate: uWS build). */
  readonly info: Record<string, unknown>;
  readonly output: string[];
  stop(): Promise<void>;
}

export interface TargetOptions {
  readonly secret: string;
  readonly redisUrl: string | undefined;
  readonly env?: Record<string, string>;
}

export function startTarget(target: Target, opts: TargetOptions): Promise<RunningTarget> {
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
    ...(opts.env ?? {}),
  };
  // WSGATE_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the servers only.
  const nodeArgs = (process.env.WSGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
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
            target,
            port: j.port,
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
