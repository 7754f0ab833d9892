// Starts a private redis-server on a free port (tests and bench), and stops it after.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: () => number | undefined;
  /** A client for assertions and bookkeeping (not the gateway's). */
  readonly client: Redis;
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) but keeps the port for restart(). */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Calls of one command since the server started, from INFO commandstats. */
  calls(command: string): Promise<number>;
  /** Calls of every command since the server started. */
  totalCalls(): Promise<number>;
}

function requireBinary(): void {
  const r = spawnSync('redis-server', ['--version']);
  if (r.error) {
    throw new Error('redis-server not found: the tests and the bench start their own Redis. Install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis).');
  }
}

/** Resolves once a Redis on 127.0.0.1:`port` answers PING (10 s at most). */
export async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return;
    } catch {
      c.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startRedisServer(): Promise<RedisServer> {
  requireBinary();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-redis-'));
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', '--maxclients', '100000'], { stdio: 'ignore' });
    await waitReady(port);
  };
  await launch();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: (t) => Math.min(t * 50, 500) });
  client.on('error', () => undefined);
  const kill = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  const stats = async (): Promise<string> => client.info('commandstats');
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => proc?.pid,
    client,
    kill,
    restart: launch,
    async calls(command: string): Promise<number> {
      const m = new RegExp(`cmdstat_${command.toLowerCase()}:calls=(\\d+)`).exec(await stats());
      return m ? Number(m[1]) : 0;
    },
    async totalCalls(): Promise<number> {
      let n = 0;
      for (const m of (await stats()).matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (m[1] !== 'info') n += Number(m[2]);
      return n;
    },
    async stop(): Promise<void> {
      client.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
