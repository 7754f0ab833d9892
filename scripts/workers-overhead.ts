// Processes or threads for the workers (docs/WORKERS.md#processes-not-threads): the fixed memory
// of N idle gateways as N processes (what the supervisor runs) and as N worker_threads of one
// process, each a whole gateway (embedded store) on its own port. Connections cost the same in both
// (each worker is its own V8 isolate and uWS loop); what differs is the fixed cost per worker and
// that threads share one process's descriptor limit.
//   npm run build && node dist/scripts/workers-overhead.js [--workers 4]
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { start } from '../src/main.js';
import { createLogger } from '../src/observability/logger.js';

const SELF = fileURLToPath(import.meta.url);
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
/** Proportional set size: pages shared between processes (node's code) counted once over them. */
const pssOf = (pid: number): number => Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;

async function gateway(): Promise<number> {
  const config = loadConfig({ WSGATE_PORT: '0', WSGATE_HOST: '127.0.0.1', WSGATE_JWT_SECRET: 'x'.repeat(32), WSGATE_WORKERS: '1' }, [], { nodeId: `overhead-${process.pid}` });
  const r = await start(config, { logger: createLogger('silent') });
  return r.port;
}

async function main(): Promise<void> {
  const n = Number(parseArgs({ options: { workers: { type: 'string' } } }).values.workers ?? 4);
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 2000));
  // N processes
  const procs = Array.from({ length: n }, () => fork(SELF, ['--child'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  await Promise.all(procs.map((p) => new Promise((r) => p.once('message', r))));
  await settle();
  const procRss = procs.reduce((a, p) => a + rssOf(p.pid!), 0);
  const procPss = procs.reduce((a, p) => a + pssOf(p.pid!), 0);
  for (const p of procs) p.kill('SIGKILL');
  // N threads in one process
  const host = fork(SELF, ['--threads', String(n)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((r) => host.once('message', r));
  await settle();
  const threadRss = rssOf(host.pid!);
  const threadPss = pssOf(host.pid!);
  host.kill('SIGKILL');
  const mb = (b: number): string => (b / 1048576).toFixed(1);
  process.stdout.write(`${n} idle gateways as processes: RSS ${mb(procRss)} MB in all (${mb(procRss / n)} MB each), PSS ${mb(procPss)} MB (${mb(procPss / n)} MB each)\n`);
  process.stdout.write(`${n} idle gateways as threads:   RSS ${mb(threadRss)} MB in all (${mb(threadRss / n)} MB each), PSS ${mb(threadPss)} MB (${mb(threadPss / n)} MB each)\n`);
  process.stdout.write(`descriptor limit: ${/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]} per process, shared by its threads\n`);
}

if (!isMainThread) {
  await gateway();
  parentPort!.postMessage('up');
} else if (process.argv.includes('--child')) {
  await gateway();
  process.send!('up');
} else if (process.argv.includes('--threads')) {
  const n = Number(process.argv[process.argv.indexOf('--threads') + 1]);
  await Promise.all(Array.from({ length: n }, () => new Promise((r) => new Worker(SELF, { workerData: {} }).once('message', r))));
  void workerData;
  process.send!('up');
} else {
  await main();
}
