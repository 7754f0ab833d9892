// The gateway under test, as a child process (dist/src/cli.js): the crash oracle is the process
// itself. It is polled on GET /healthz while it runs; when it exits on its own, the exit code,
// signal and the last lines it printed (the uncaught exception's stack) are kept, and a new
// generation can be started so that the run goes on.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built gateway: dist/src/cli.js, whether this module runs from dist/ or from its source (vitest). */
export const CLI = fileURLToPath(new URL(import.meta.url.includes('/dist/scripts/') ? '../../src/cli.js' : '../../dist/src/cli.js', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** the last lines the process printed */
  readonly tail: string;
}

export interface GatewayOptions {
  readonly secret: string;
  /** extra environment (WSGATE_REDIS_URL, WSGATE_MAX_PAYLOAD_BYTES, ...) */
  readonly env?: Record<string, string>;
  readonly cli?: string;
  /** GET /healthz every this many ms (0: no polling) */
  readonly healthEveryMs?: number;
}

export class GatewayProcess {
  readonly url: string;
  readonly http: string;
  exit: Exit | undefined;
  /** set before a kill we asked for: that exit is no crash */
  stopping = false;
  readonly exited: Promise<Exit>;
  /** /healthz answers that were not 200 while the process was alive (status or error) */
  readonly healthFailures: string[] = [];
  healthChecks = 0;
  private readonly lines: string[] = [];
  private poll: NodeJS.Timeout | undefined;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly gen: number,
    lines: string[],
    exited: Promise<Exit>,
    healthEveryMs: number,
  ) {
    this.url = `ws://127.0.0.1:${port}/ws`;
    this.http = `http://127.0.0.1:${port}`;
    this.lines = lines;
    this.exited = exited.then((e) => {
      this.exit = e;
      if (this.poll) clearInterval(this.poll);
      return e;
    });
    if (healthEveryMs > 0) {
      this.poll = setInterval(() => void this.checkHealth(), healthEveryMs);
      this.poll.unref();
    }
  }

  get alive(): boolean {
    return this.exit === undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }

  async checkHealth(): Promise<boolean> {
    if (!this.alive) return false;
    this.healthChecks++;
    try {
      const r = await fetch(`${this.http}/healthz`, { signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      if (r.status === 200) return true;
      if (this.alive) this.healthFailures.push(`status ${r.status}`);
    } catch (e) {
      // a process on its way out (a crash, counted as such) refuses connections first
      if (!(await this.diedWithin(1000)) && !this.stopping) this.healthFailures.push(`error ${(e as Error).message}`);
    }
    return false;
  }

  /** The `connections` count of /healthz (-1 when it does not answer). */
  async connections(): Promise<number> {
    try {
      const r = await fetch(`${this.http}/healthz`, { signal: AbortSignal.timeout(5000) });
      return ((await r.json()) as { connections?: number }).connections ?? -1;
    } catch {
      return -1;
    }
  }

  /** True when the process exited within `ms` (used after a socket dropped: was it the gateway?). */
  async diedWithin(ms: number): Promise<boolean> {
    if (!this.alive) return true;
    return Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(!this.alive), ms))]);
  }

  async stop(): Promise<Exit> {
    this.stopping = true;
    if (this.poll) clearInterval(this.poll);
    if (this.alive) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.alive && this.proc.kill('SIGKILL'), 12_000);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  static start(opts: GatewayOptions, gen: number): Promise<GatewayProcess> {
    // WSGATE_FUZZ_CLI points the fuzzer and its tests at another build (a fix in progress)
    const proc = spawn(process.execPath, [opts.cli ?? process.env.WSGATE_FUZZ_CLI ?? CLI], {
      env: {
        PATH: process.env.PATH ?? '',
        WSGATE_PORT: '0',
        WSGATE_HOST: '127.0.0.1',
        WSGATE_JWT_SECRET: opts.secret,
        WSGATE_RATE_LIMIT: '0',
        WSGATE_LOG_LEVEL: 'info',
        WSGATE_PRESENCE_FLUSH_MS: '20',
        WSGATE_REGISTRY_FLUSH_MS: '200',
        WSGATE_NODE_ID: `fuzz-${process.pid}-${gen}`,
        // one process: the crash oracle is its exit (a supervisor would restart a crashed worker)
        WSGATE_WORKERS: '1',
        WSGATE_DRAIN_GRACE_SEC: '0',
        WSGATE_DRAIN_SEC: '0',
        WSGATE_KEY_PREFIX: `fuzz${process.pid}x${gen}:`,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => setImmediate(() => resolve({ code, signal, tail: lines.slice(-60).join('\n') }))));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`gateway did not start in 15 s:\n${lines.join('\n')}`));
      }, 15_000);
      let buf = '';
      let started = false;
      const feed = (chunk: Buffer): void => {
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          // info logs per connection would be many: keep what is not routine
          if (!line.includes('"level":30') || !started) lines.push(line.length > 2000 ? line.slice(0, 2000) + '…' : line);
          if (lines.length > 400) lines.splice(0, 200);
          if (started || !line.includes('"wsgate listening"')) continue;
          started = true;
          clearTimeout(timer);
          resolve(new GatewayProcess(proc, (JSON.parse(line) as { port: number }).port, gen, lines, exited, opts.healthEveryMs ?? 500));
        }
      };
      proc.stdout!.on('data', feed);
      proc.stderr!.on('data', feed);
      void exited.then((e) => {
        clearTimeout(timer);
        if (!started) reject(new Error(`gateway exited (${e.code ?? e.signal}) before listening:\n${lines.join('\n')}`));
      });
    });
  }
}

/** The crash signature: the error line and the first stack frame of what the gateway printed last. */
export function crashSignature(tail: string): string {
  const lines = tail.split('\n');
  const i = lines.findIndex((l) => /^[A-Za-z]*(Error|Exception)\b.*:/.test(l) || /^Uncaught/.test(l));
  if (i < 0) return lines.filter((l) => l.trim() !== '').slice(-1)[0]?.slice(0, 160) ?? 'no output';
  // the same bug at another depth or with another value is the same crash: no line:column, no numbers
  const at = lines.slice(i + 1).find((l) => l.trim().startsWith('at '))?.trim().replace(/file:\/\/\S*\/(node_modules|dist)\//, '$1/').replace(/:\d+:\d+\)?$/, ')') ?? '';
  const what = lines[i]!.replace(/-?\d{4,}/g, 'N').slice(0, 120);
  return `${what} ${at}`.trim();
}
