// Runs one scenario against wsgate and its baselines in one invocation, samples the servers,
// and writes the report (JSON, Markdown, HTML). Importable: `runBench(options)`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { TARGETS, type Target } from './lib/dialects.js';
import { Generator } from './lib/generator.js';
import { renderHtml } from './lib/html.js';
import { startBenchRedis, type BenchRedis } from './lib/bench-redis.js';
import { cpuModel, effectiveFdLimit, listenOverflows, sampleTrees, type ProcSample } from './lib/procs.js';
import { FIGURES, renderMarkdown, SCHEMA, type FigureRatio, type Report, type RunReport, type TimelinePoint } from './lib/report.js';
import { startTarget } from './lib/targets.js';
import { scenarios, type BenchOptions, type ScenarioContext } from './scenarios.js';

/** The phase whose server CPU is the scenario's (the phase that produces the headline). */
const MEASURED: Record<BenchOptions['scenario'], string> = {
  'connect-storm': 'connect',
  'reconnect-storm': 'connect',
  fanout: 'fanout',
  echo: 'echo',
  'refresh-storm': 'refresh',
  hold: 'hold',
  revocation: 'connect',
  http: 'http healthz',
};

const log = (opts: BenchOptions, line: string): void => {
  if (!opts.quiet) process.stderr.write(line + '\n');
};

/** Sums samples of several processes. */
function total(samples: ReadonlyArray<ProcSample | undefined>): ProcSample {
  const t: ProcSample = { cpuMs: 0, rssBytes: 0, rssAnonBytes: 0, procs: 0 };
  for (const s of samples) {
    if (!s) continue;
    t.cpuMs += s.cpuMs;
    t.rssBytes += s.rssBytes;
    t.rssAnonBytes += s.rssAnonBytes;
    t.procs += s.procs;
  }
  return t;
}

/** wsgate's /metrics value `wsgate_<name>` of one process; undefined when absent or unreachable. */
async function scrape(port: number, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = new RegExp(`^wsgate_${name} ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Connects and closes `--warmup` connections with tokens of their own (a jti prefix of their own:
 * the measured connections must still miss the verifier cache), so the measured phases run on a
 * JIT-warm server; then waits past the work the server defers (wsgate: 1 s registry flushes).
 */
async function warmUp(target: Target, ports: readonly number[], opts: BenchOptions, secret: string): Promise<void> {
  log(opts, `  warm-up: ${opts.warmup} connections`);
  const gen = await Generator.start({ target, encoding: opts.encoding, ports, workers: opts.workers, conns: opts.warmup, secret, tenant: 'bench', rooms: opts.rooms, placement: opts.placement, jtiPrefix: `warmup-${randomBytes(4).toString('hex')}-`, tokenTtlSec: 3600, reuseTokens: false });
  try {
    await gen.run({ cmd: 'connect', rate: 0, concurrency: Math.max(1, Math.ceil(opts.concurrency / gen.workers)), timeoutMs: 10_000 });
    await gen.run({ cmd: 'close' });
  } finally {
    await gen.stop();
  }
  await new Promise((r) => setTimeout(r, 1500));
}

async function runTarget(target: Target, opts: BenchOptions, redis: BenchRedis | undefined, secret: string): Promise<RunReport> {
  const jtiPrefix = `bench-${randomBytes(4).toString('hex')}-`;
  const env = target === 'wsgate' ? { ...(redis?.env ?? {}), ...opts.gatewayEnv } : {};
  const running = await startTarget(target, { secret, redisUrl: redis?.url, env }, target === 'wsgate' ? opts.gatewayProcs : 1);
  const roots = running.procs.map((p) => p.pid);
  // Every figure is of the whole target: each process with its descendants (a supervisor's workers).
  const samples = (): Array<ProcSample | undefined> => sampleTrees(roots);
  const redisCpuMs = (): number | undefined => redis?.cpuMs();
  let gen: Generator;
  try {
    if (opts.warmup > 0) await warmUp(target, running.ports, opts, secret);
    gen = await Generator.start({
      target,
      encoding: opts.encoding,
      ports: running.ports,
      workers: opts.workers,
      conns: opts.conns,
      secret,
      tenant: 'bench',
      rooms: opts.rooms,
      placement: opts.placement,
      jtiPrefix,
      tokenTtlSec: 6 * 3600,
      reuseTokens: opts.reuseTokens,
    });
  } catch (e) {
    await running.stop();
    throw e;
  }
  const timeline: TimelinePoint[] = [];
  let phase = 'start';
  const t0 = Date.now();
  const first = samples();
  let last = { t: t0, ok: 0, deliveries: 0, cpuMs: total(first).cpuMs, phase };
  let lastRss = total(first).rssBytes;
  const perProc = running.procs.map((p, i) => ({ pid: p.pid, port: p.port, nodeId: p.nodeId, rssMaxBytes: first[i]?.rssBytes ?? 0, treeProcs: first[i]?.procs ?? 0 }));
  const tty = process.stderr.isTTY && !opts.quiet;
  let lastLine = 0;
  // CPU per phase, of the target and of each process: the measured phase's share is the server CPU the report states.
  const phases: Array<{ name: string; t: number; cpuMs: number; procCpuMs: number[] }> = [];
  const phaseMark = (name: string): void => {
    const s = samples();
    phases.push({ name, t: Date.now(), cpuMs: total(s).cpuMs, procCpuMs: s.map((x) => x?.cpuMs ?? 0) });
  };
  const tick = (): void => {
    const now = Date.now();
    if (now - last.t < 20) return;
    const per = samples();
    const s = total(per);
    per.forEach((x, i) => {
      if (!x) return;
      perProc[i]!.rssMaxBytes = Math.max(perProc[i]!.rssMaxBytes, x.rssBytes);
      perProc[i]!.treeProcs = Math.max(perProc[i]!.treeProcs, x.procs);
    });
    const g = gen.totals();
    if (phase !== last.phase) last = { ...last, ok: 0, deliveries: 0, phase };
    const dt = (now - last.t) / 1000;
    const alive = s.procs > 0;
    const point: TimelinePoint = {
      t: (now - t0) / 1000,
      phase,
      open: g.open,
      okRate: Math.max(0, (g.ok - last.ok) / dt),
      deliveriesRate: Math.max(0, (g.deliveries - last.deliveries) / dt),
      errors: g.errors,
      cpu: alive ? (s.cpuMs - last.cpuMs) / (now - last.t) : 0,
      rssMB: alive ? s.rssBytes / 1048576 : 0,
    };
    timeline.push(point);
    if (alive) lastRss = s.rssBytes;
    last = { t: now, ok: g.ok, deliveries: g.deliveries, cpuMs: alive ? s.cpuMs : last.cpuMs, phase };
    const line = `[${point.t.toFixed(0).padStart(4)}s] ${target.padEnd(8)} ${phase.padEnd(12)} conns=${g.open} rate=${point.okRate.toFixed(0)}/s deliveries=${point.deliveriesRate.toFixed(0)}/s errors=${g.errors} cpu=${(point.cpu * 100).toFixed(0)}% rss=${point.rssMB.toFixed(0)}MB`;
    if (tty) process.stderr.write(`\r${line}\x1b[K`);
    else if (!opts.quiet && now - lastLine >= 5000) {
      process.stderr.write(line + '\n');
      lastLine = now;
    }
  };
  const sampler = setInterval(tick, 500);
  const ctx: ScenarioContext = {
    gen,
    target: running,
    opts,
    redis,
    secret,
    jtiPrefix,
    phase: (p) => {
      tick();
      phase = p;
      phaseMark(p);
    },
    rss: () => {
      const s = total(samples());
      return s.procs > 0 ? s.rssBytes : lastRss;
    },
    cpuMs: () => total(samples()).cpuMs,
    sample: () => total(samples()),
    redisCpuMs,
    metric: async (name) => {
      if (target !== 'wsgate') return undefined;
      const values = await Promise.all(running.ports.map((port) => scrape(port, name)));
      return values.some((v) => v === undefined) ? undefined : values.reduce((a, b) => a! + b!, 0);
    },
  };
  const overflows0 = listenOverflows();
  try {
    const r = await scenarios[opts.scenario](ctx);
    tick();
    // Handshakes the kernel dropped because the server's accept queue was full (uWS listens with a
    // backlog of 512): above that many upgrades in flight, the figure measures the queue, not wsgate.
    r.metrics.listenOverflows = listenOverflows() - overflows0;
    phaseMark('end');
    const byPhase = (cpu: (p: (typeof phases)[number]) => number): Record<string, number> => {
      const out: Record<string, number> = {};
      for (let i = 0; i + 1 < phases.length; i++) {
        const a = phases[i]!;
        const b = phases[i + 1]!;
        if (b.t > a.t) out[a.name] = (cpu(b) - cpu(a)) / (b.t - a.t); // the last occurrence wins
      }
      return out;
    };
    const cpuByPhase = byPhase((p) => p.cpuMs);
    const measured = MEASURED[opts.scenario];
    return {
      target,
      role: target === 'wsgate' ? 'subject' : 'baseline',
      info: running.info,
      ...r,
      server: {
        cpuAvg: cpuByPhase[measured] ?? 0,
        cpuByPhase,
        cpuMax: Math.max(0, ...timeline.map((p) => p.cpu)),
        rssMaxBytes: Math.max(0, ...timeline.map((p) => p.rssMB * 1048576)),
        processes: perProc.map((p, i) => {
          const phaseCpu = byPhase((x) => x.procCpuMs[i] ?? 0);
          return { ...p, cpuAvg: phaseCpu[measured] ?? 0, cpuByPhase: phaseCpu };
        }),
      },
      generator: { workers: gen.workers, addrs: gen.addrs, workerCpu: r.workerCpu, maxWorkerCpu: Math.max(0, ...r.workerCpu) },
      timeline,
    };
  } finally {
    clearInterval(sampler);
    if (tty) process.stderr.write('\n');
    await gen.stop();
    await running.stop();
  }
}

export async function runBench(opts: BenchOptions): Promise<{ report: Report; files: string[] }> {
  const startedAt = new Date();
  // Each server is one process: it cannot hold more sockets than its descriptor limit. Past it,
  // accept() fails with EMFILE and the event loop spins on the listen socket.
  const fdLimit = effectiveFdLimit();
  // wsgate's default connection cap is the limit minus 512.
  if (opts.conns > fdLimit - 600) {
    throw new Error(`--conns ${opts.conns} exceeds what one server process can hold here: the file-descriptor limit is ${fdLimit} (raising it needs CAP_SYS_RESOURCE). Use at most ${fdLimit - 600}.`);
  }
  if (opts.gatewayProcs > 1 && opts.store === 'memory') throw new Error('--gateway-procs > 1 needs --store redis or redis-cluster: the processes share rooms through Redis');
  const secret = randomBytes(32).toString('base64url');
  // uWS is always run: it is the calibration of the generator's headroom as well as a baseline.
  const targets = TARGETS.filter((t) => t === 'wsgate' || t === 'uws' || opts.baselines.includes(t));
  const usesRedis = (t: Target): boolean => (t === 'wsgate' ? opts.store !== 'memory' : t !== 'uws');
  // the baselines use a single Redis; wsgate the one --store names
  const clusterFor = opts.store === 'redis-cluster' ? await startBenchRedis('redis-cluster') : undefined;
  let redis: BenchRedis | undefined;
  try {
    redis = targets.some((t) => usesRedis(t) && !(t === 'wsgate' && clusterFor)) ? await startBenchRedis('redis') : undefined;
  } catch (e) {
    await clusterFor?.stop();
    throw e;
  }
  const runs: RunReport[] = [];
  try {
    for (const t of targets) {
      const procs = t === 'wsgate' && opts.gatewayProcs > 1 ? ` on ${opts.gatewayProcs} processes (placement ${opts.placement})` : '';
      log(opts, `bench ${opts.scenario}: ${t}${procs} (${opts.conns} connections, ${opts.workers} workers)`);
      runs.push(await runTarget(t, opts, !usesRedis(t) ? undefined : t === 'wsgate' && clusterFor ? clusterFor : redis, secret));
    }
  } finally {
    await redis?.stop();
    await clusterFor?.stop();
  }
  const report: Report = {
    schema: SCHEMA,
    scenario: opts.scenario,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: { ...opts },
    environment: {
      cpuModel: cpuModel(),
      cores: cpus().length,
      memoryBytes: totalmem(),
      node: process.version,
      os: `${process.platform} ${release()}`,
      uws: runs[0]?.info ?? {},
      fdLimit,
    },
    runs,
    ratios: {},
    headroom: { calibrationTarget: 'uws', ratio: undefined, generatorBound: false, note: '' },
    capacity: {},
  };
  finishReport(report);
  const dir = join(opts.outDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}-${opts.scenario}`);
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, 'report.json'), join(dir, 'report.md'), join(dir, 'report.html')];
  writeFileSync(files[0]!, JSON.stringify(report, null, 2));
  writeFileSync(files[1]!, renderMarkdown(report));
  writeFileSync(files[2]!, renderHtml(report));
  return { report, files };
}

/** Ratios against the baselines, the generator's headroom, and the capacity section. */
export function finishReport(report: Report): void {
  const subject = report.runs.find((r) => r.role === 'subject');
  if (!subject) return;
  for (const b of report.runs.filter((r) => r.role === 'baseline')) {
    const ratio = b.headline.value > 0 ? subject.headline.value / b.headline.value : undefined;
    const figures: Record<string, FigureRatio> = {};
    for (const f of FIGURES[report.scenario] ?? []) {
      const x = subject.metrics[f.key];
      const y = b.metrics[f.key];
      if (x === undefined || y === undefined) continue;
      figures[f.key] = { subject: x, baseline: y, ratio: y > 0 ? x / y : undefined, difference: x - y, ...(f.unit === 'bytes' ? { differenceKB: (x - y) / 1024 } : {}), unit: f.unit, higherIsBetter: f.higherIsBetter };
    }
    report.ratios[b.target] = { headline: ratio, metric: subject.headline.metric, higherIsBetter: subject.headline.higherIsBetter, figures };
  }
  const calib = report.runs.find((r) => r.target === 'uws');
  const maxWorkerCpu = Math.max(0, ...report.runs.map((r) => r.generator.maxWorkerCpu));
  if (calib && subject.throughput !== undefined && calib.throughput !== undefined && subject.throughput > 0) {
    const ratio = calib.throughput / subject.throughput;
    const paced = report.options.rate > 0 || (report.scenario === 'fanout' && !report.options.saturate);
    const generatorBound = !paced && ratio < 2;
    report.headroom = {
      calibrationTarget: 'uws',
      ratio,
      generatorBound,
      note: paced
        ? `open loop: the offered rate is fixed; the generator drove bare uWS at ${ratio.toFixed(2)}x the rate wsgate achieved`
        : generatorBound
          ? `GENERATOR-BOUND: the generator drove bare uWS at only ${ratio.toFixed(2)}x the rate it reports for wsgate (< 2x); wsgate's figure is a lower bound (on this 2-core machine the generator and the server share the CPU)`
          : `the generator drove bare uWS at ${ratio.toFixed(2)}x the rate it reports for wsgate (>= 2x): not generator-bound`,
    };
  } else {
    report.headroom = { calibrationTarget: 'uws', ratio: undefined, generatorBound: false, note: 'not applicable to this scenario (no throughput)' };
  }
  if (maxWorkerCpu > 0.9) report.headroom.note += `; a generator worker used ${(maxWorkerCpu * 100).toFixed(0)}% of a core`;
  const cap = report.capacity;
  const cpu = subject.server.cpuAvg;
  if (report.scenario === 'hold') {
    const perConn = subject.metrics.rssBytes !== undefined ? subject.headline.value : 0;
    if (perConn > 0) cap.connectionsPerGB = 1073741824 / perConn;
    const cpuPer1k = subject.metrics.cpuPer1kConns ?? 0;
    if (cpuPer1k > 0) cap.connectionsPerCore = 1000 / cpuPer1k;
  }
  if ((report.scenario === 'connect-storm' || report.scenario === 'reconnect-storm') && cpu > 0) cap.upgradesPerSecPerCore = subject.headline.value / cpu;
  if (report.scenario === 'fanout' && cpu > 0) cap.deliveriesPerSecPerCore = subject.headline.value / cpu;
  if (report.scenario === 'echo' && cpu > 0) cap.roundTripsPerSecPerCore = subject.headline.value / cpu;
}
