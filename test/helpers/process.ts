// Runs the built gateway (dist/src/cli.js) as a child process, as in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SECRET } from './tokens.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface GatewayProcess {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly http: string;
  readonly output: string[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const proc = spawn(process.execPath, [CLI], {
    env: { PATH: process.env.PATH ?? '', WSGATE_PORT: '0', WSGATE_HOST: '127.0.0.1', WSGATE_JWT_SECRET: SECRET, WSGATE_LOG_LEVEL: 'info', WSGATE_MAX_PENDING_PER_ADDRESS: '100000', WSGATE_WORKERS: '1', WSGATE_DRAIN_GRACE_SEC: '0', WSGATE_DRAIN_SEC: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output.join('\n')}`)), 15_000);
    const onLine = (line: string): void => {
      output.push(line);
      if (!line.includes('"wsgate listening"')) return;
      const port = (JSON.parse(line) as { port: number }).port;
      clearTimeout(timer);
      resolve({
        proc,
        port,
        url: `ws://127.0.0.1:${port}/ws`,
        http: `http://127.0.0.1:${port}`,
        output,
        kill: (signal = 'SIGTERM') => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    };
    let buf = '';
    const feed = (chunk: Buffer): void => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    proc.stdout!.on('data', feed);
    proc.stderr!.on('data', feed);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}) before listening:\n${output.join('\n')}`));
    });
  });
}
