// The load generator: forks worker processes (bench/lib/worker.ts), shares connections among
// them, runs phases on all at once and merges their counters and histograms.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import type { Target } from './dialects.js';
import { spawnNode } from './procs.js';
import type { Command, PhaseStats, Progress, WorkerSpec } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export interface GeneratorOptions {
  readonly target: Target;
  readonly encoding: 'json' | 'msgpack';
  /** the target's ports (one per process of a multi-process target) */
  readonly ports: readonly number[];
  readonly workers: number;
  readonly conns: number;
  readonly secret: string;
  readonly tenant: string;
  readonly rooms: number;
  /** which process of a multi-process target a connection goes to (worker.ts destination()) */
  readonly placement: 'mixed' | 'rooms';
  readonly jtiPrefix: string;
  readonly tokenTtlSec: number;
  readonly reuseTokens: boolean;
  /** connect over TLS (wss://) */
  readonly tls: boolean;
}

export interface Merged {
  ok: number;
  errors: Record<string, number>;
  hist: hdr.Histogram;
  deliveries: number;
  deliveryHist: hdr.Histogram;
  elapsedMs: number;
  /** from the phase start to the last successful operation of any worker */
  activeMs: number;
  /** per worker: CPU share of one core during the phase (0..1) */
  workerCpu: number[];
  /** per-second counts summed over the workers (reconnect phase) */
  series: Record<string, number[]>;
  /** connections open at the end of the phase, over the workers (reconnect phase) */
  openAtEnd: number;
}

export type ProgressSum = { open: number; ok: number; deliveries: number; errors: number };

export class Generator {
  private readonly progress: Progress[];

  private constructor(
    private readonly procs: ChildProcess[],
    readonly addrs: number,
  ) {
    this.progress = procs.map(() => ({ ev: 'progress', open: 0, ok: 0, deliveries: 0, errors: 0 }));
    procs.forEach((p, i) =>
      p.on('message', (m: { ev: string }) => {
        if (m.ev === 'progress') this.progress[i] = m as Progress;
      }),
    );
  }

  static async start(o: GeneratorOptions): Promise<Generator> {
    // One loopback address per 4k connections: an address pair has ~28k ephemeral ports, but
    // Linux's port search in connect() slows to a crawl long before they run out (20k connections
    // to one address: ~1k upgrades/s, all system time); 4k per pair keeps it instant.
    const addrs = Math.min(250, Math.max(1, Math.ceil(o.conns / 4000)));
    // Each worker stays under its own descriptor limit (20000 here): more workers when needed.
    const workers = Math.max(o.workers, Math.ceil(o.conns / 18_000));
    const per = Math.ceil(o.conns / workers);
    const procs: ChildProcess[] = [];
    const readies: Array<Promise<void>> = [];
    for (let i = 0; i < workers; i++) {
      const first = i * per;
      const count = Math.max(0, Math.min(per, o.conns - first));
      const p = spawnNode(WORKER, [], {}, ['ignore', 'inherit', 'inherit', 'ipc']);
      procs.push(p);
      const spec: WorkerSpec = { index: i, target: o.target, encoding: o.encoding, host: '127.0.0.1', ports: o.ports, first, conns: count, addrs, secret: o.secret, tokenTtlSec: o.tokenTtlSec, tenant: o.tenant, rooms: o.rooms, placement: o.placement, jtiPrefix: o.jtiPrefix, reuseTokens: o.reuseTokens, tls: o.tls };
      readies.push(
        new Promise((resolve, reject) => {
          p.once('message', (m: { ev: string }) => (m.ev === 'ready' ? resolve() : reject(new Error(JSON.stringify(m)))));
          p.once('exit', (code) => reject(new Error(`worker ${i} exited with ${code}`)));
        }),
      );
      p.send({ init: spec });
    }
    await Promise.all(readies); // tokens are minted: the clock may start
    return new Generator(procs, addrs);
  }

  get workers(): number {
    return this.procs.length;
  }

  /** Live totals over the workers (refreshed every 500 ms). */
  totals(): ProgressSum {
    const t = { open: 0, ok: 0, deliveries: 0, errors: 0 };
    for (const p of this.progress) {
      t.open += p.open;
      t.ok += p.ok;
      t.deliveries += p.deliveries;
      t.errors += p.errors;
    }
    return t;
  }

  /** Runs one phase on every worker (`cmd` may differ per worker) and merges the results. */
  async run(cmd: Command | ((worker: number) => Command)): Promise<Merged> {
    for (const p of this.progress) Object.assign(p, { ok: 0, deliveries: 0, errors: 0 });
    // A phase may hold its workers at barriers (fanout: all count deliveries before any publishes,
    // all are done publishing before any drains): each is released when every worker reached it.
    let atBarrier = 0;
    const results = await Promise.all(
      this.procs.map(
        (p, i) =>
          new Promise<PhaseStats>((resolve, reject) => {
            const onMsg = (m: { ev: string; stats?: PhaseStats; error?: string }): void => {
              if (m.ev === 'barrier' && ++atBarrier % this.procs.length === 0) {
                for (const q of this.procs) q.send({ release: true });
              } else if (m.ev === 'done') {
                p.off('message', onMsg);
                resolve(m.stats!);
              } else if (m.ev === 'failed') {
                p.off('message', onMsg);
                reject(new Error(m.error));
              }
            };
            p.on('message', onMsg);
            p.send({ run: typeof cmd === 'function' ? cmd(i) : cmd });
          }),
      ),
    );
    const merged: Merged = { ok: 0, errors: {}, hist: newHist(), deliveries: 0, deliveryHist: newHist(), elapsedMs: 0, activeMs: 0, workerCpu: [], series: {}, openAtEnd: 0 };
    for (const r of results) {
      merged.openAtEnd += r.openAtEnd ?? 0;
      for (const [k, v] of Object.entries(r.series ?? {})) {
        const sum = (merged.series[k] ??= []);
        v.forEach((x, i) => (sum[i] = (sum[i] ?? 0) + x));
      }
      merged.ok += r.ok;
      merged.deliveries += r.deliveries;
      for (const [k, v] of Object.entries(r.errors)) merged.errors[k] = (merged.errors[k] ?? 0) + v;
      merged.hist.add(hdr.decodeFromCompressedBase64(r.hist));
      merged.deliveryHist.add(hdr.decodeFromCompressedBase64(r.deliveryHist));
      merged.elapsedMs = Math.max(merged.elapsedMs, r.elapsedMs);
      merged.activeMs = Math.max(merged.activeMs, r.activeMs);
      merged.workerCpu.push(r.elapsedMs > 0 ? (r.cpuUserMs + r.cpuSystemMs) / r.elapsedMs : 0);
    }
    return merged;
  }

  /** Ends a phase that runs until told (reconnect) on every worker. */
  endPhase(): void {
    for (const p of this.procs) if (p.connected) p.send({ stop: true });
  }

  async stop(): Promise<void> {
    for (const p of this.procs) if (p.connected) p.disconnect();
    await Promise.all(this.procs.map((p) => (p.exitCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r)))));
  }
}

export function newHist(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** percentile curve: [percentile, ms] */
  curve: Array<[number, number]>;
}

/** Histogram (µs) -> percentiles in ms. */
export function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (v: number): number => Math.round(v) / 1000;
  const curve: Array<[number, number]> = [];
  for (const p of [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100]) curve.push([p, ms(h.getValueAtPercentile(p))]);
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
    curve,
  };
}
