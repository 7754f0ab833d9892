// Runs one scenario against wsgate and its baselines in one invocation, samples the servers,
// and writes the report (JSON, Markdown, HTML). Importable: `runBench(options)`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { makeCa } from './lib/certs.js';
import { TARGETS, type Target } from './lib/dialects.js';
import { Generator } from './lib/generator.js';
import { renderHtml } from './lib/html.js';
import { startBenchRedis, type BenchRedis } from './lib/bench-redis.js';
import { cpuModel, effectiveFdLimit, listenOverflows, sampleTreeProcs, sampleTrees, type ProcSample } from './lib/procs.js';
import { FIGURES, renderMarkdown, SCHEMA, type FigureRatio, type Report, type RunReport, type ScalingPoint, type TimelinePoint } from './lib/report.js';
import { stage } from './lib/stage.js';
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
  drain: 'drain',
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

/** One target as a run starts it: its name in the report, and whether it serves TLS. */
export interface RunSpec {
  readonly target: Target;
  readonly label: string;
  readonly tls: boolean;
}

/** The targets of a run, in report order: the subject first, then its baselines. */
export function runSpecs(opts: Pick<BenchOptions, 'tls' | 'baselines' | 'scenario'>): RunSpec[] {
  // drain: a wsgate-only scenario
  if (opts.scenario === 'drain') return [{ target: 'wsgate', label: 'wsgate', tls: false }];
  // --tls: wsgate over TLS against itself in plain text (the cost of TLS), and bare uWS over TLS (the calibration)
  if (opts.tls) return [{ target: 'wsgate', label: 'wsgate', tls: true }, { target: 'wsgate', label: 'wsgate-plain', tls: false }, { target: 'uws', label: 'uws', tls: true }];
  return TARGETS.filter((t) => t === 'wsgate' || t === 'uws' || opts.baselines.includes(t)).map((t) => ({ target: t, label: t, tls: false }));
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onRes = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    };
    const req = url.startsWith('https:') ? httpsGet(url, { rejectUnauthorized: false }, onRes) : httpGet(url, onRes);
    req.once('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/** wsgate's /metrics value `wsgate_<name>` of one process; undefined when absent or unreachable. */
async function scrape(port: number, name: string, tls: boolean): Promise<number | undefined> {
  try {
    const text = await getText(`${tls ? 'https' : 'http'}://127.0.0.1:${port}/metrics`);
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
async function warmUp(spec: RunSpec, ports: readonly number[], opts: BenchOptions, secret: string): Promise<void> {
  log(opts, `  warm-up: ${opts.warmup} connections`);
  const gen = await Generator.start({ target: spec.target, encoding: opts.encoding, ports, workers: opts.workers, conns: opts.warmup, secret, tenant: 'bench', rooms: opts.rooms, placement: opts.placement, jtiPrefix: `warmup-${randomBytes(4).toString('hex')}-`, tokenTtlSec: 3600, reuseTokens: false, tls: spec.tls });
  try {
    await gen.run({ cmd: 'connect', rate: 0, concurrency: Math.max(1, Math.ceil(opts.concurrency / gen.workers)), timeoutMs: 10_000 });
    await gen.run({ cmd: 'close' });
  } finally {
    await gen.stop();
  }
  await new Promise((r) => setTimeout(r, 1500));
}

type CertFiles = { readonly certFile: string; readonly keyFile: string };

/** One target's run; `workers`: wsgate's WSGATE_WORKERS (bare uWS: processes on one port). */
async function runTarget(spec: RunSpec, opts: BenchOptions, redis: BenchRedis | undefined, secret: string, cert: CertFiles | undefined, workers: number, role: RunReport['role']): Promise<RunReport> {
  const { target } = spec;
  const jtiPrefix = `bench-${randomBytes(4).toString('hex')}-`;
  const env: Record<string, string> = target === 'wsgate' ? { ...(redis?.env ?? {}), ...opts.gatewayEnv, ...(opts.scenario === 'drain' ? { WSGATE_DRAIN_GRACE_SEC: '0', WSGATE_DRAIN_SEC: String(opts.drainSec) } : {}) } : {};
  stage(`${target}: starting the target`);
  const running = await startTarget(target, { secret, redisUrl: redis?.url, env, ...(spec.tls && cert ? { tls: cert } : {}) }, target === 'wsgate' ? opts.gatewayProcs : 1, workers);
  const roots = running.procs.map((p) => p.pid);
  // Every figure is of the whole target: each process with its descendants (a supervisor's workers).
  const samples = (): Array<ProcSample | undefined> => sampleTrees(roots);
  /** every process of every tree on its own: pid -> CPU ms (the per-worker figures) */
  // A process that exited (a drained or restarted worker) keeps its last reading, so its share of a
  // later phase is 0, not minus what it had used.
  const lastTreeCpu = new Map<number, number>();
  const treeCpu = (): Map<number, number> => {
    for (const r of roots) for (const x of sampleTreeProcs(r)) lastTreeCpu.set(x.pid, x.sample.cpuMs);
    return new Map(lastTreeCpu);
  };
  const treeRss = new Map<number, { root: number; rssMaxBytes: number }>();
  const redisCpuMs = (): number | undefined => redis?.cpuMs();
  let gen: Generator;
  try {
    stage(`${target}: warm-up`);
    if (opts.warmup > 0) await warmUp(spec, running.ports, opts, secret);
    stage(`${target}: opening the generator's connections`);
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
      tls: spec.tls,
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
  const phases: Array<{ name: string; t: number; cpuMs: number; procCpuMs: number[]; treeCpuMs: Map<number, number> }> = [];
  const phaseMark = (name: string): void => {
    stage(`${target}: phase ${name}`);
    const s = samples();
    phases.push({ name, t: Date.now(), cpuMs: total(s).cpuMs, procCpuMs: s.map((x) => x?.cpuMs ?? 0), treeCpuMs: treeCpu() });
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
    if (running.workers > 1 || opts.gatewayProcs > 1) {
      for (const r of roots) {
        for (const { pid, sample } of sampleTreeProcs(r)) {
          const e = treeRss.get(pid);
          treeRss.set(pid, { root: r, rssMaxBytes: Math.max(e?.rssMaxBytes ?? 0, sample.rssBytes) });
        }
      }
    }
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
    const line = `[${point.t.toFixed(0).padStart(4)}s] ${spec.label.padEnd(12)} ${phase.padEnd(12)} conns=${g.open} rate=${point.okRate.toFixed(0)}/s deliveries=${point.deliveriesRate.toFixed(0)}/s errors=${g.errors} cpu=${(point.cpu * 100).toFixed(0)}% rss=${point.rssMB.toFixed(0)}MB`;
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
      const values = await Promise.all(running.ports.map((port) => scrape(port, name, spec.tls)));
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
    // Every process of the trees on its own in the measured phase: a supervisor and each worker.
    const perProcess = [...treeRss].map(([pid, x]) => ({ pid, root: pid === x.root, cpuAvg: byPhase((p) => p.treeCpuMs.get(pid) ?? 0)[measured] ?? 0, rssMaxBytes: x.rssMaxBytes }));
    return {
      target: spec.label,
      role,
      workers: running.workers,
      info: { ...running.info, tls: spec.tls },
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
        perProcess,
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

/**
 * Each server process holds its share of the connections within its own descriptor limit (wsgate's
 * default cap per process is the limit less 256 and the pending-socket bound). wsgate's workers and
 * bare uWS's processes on one port share the connections as the kernel spreads them (SO_REUSEPORT
 * hashes connections: about even, so 10% headroom is asked for); naive and Socket.IO are one process.
 */
export function checkDescriptors(opts: Pick<BenchOptions, 'conns' | 'gatewayProcs' | 'gatewayWorkers' | 'baselines' | 'scenario'>, fdLimit: number): void {
  const room = fdLimit - 600;
  const need = (procs: number): number => (procs > 1 ? Math.ceil((opts.conns / procs) * 1.1) : opts.conns);
  const fewest = Math.min(...opts.gatewayWorkers) * opts.gatewayProcs;
  const problems: string[] = [];
  if (need(fewest) > room) problems.push(`wsgate with ${Math.min(...opts.gatewayWorkers)} worker(s) per process would hold ~${need(fewest)} connections in one process`);
  if (opts.scenario !== 'drain' && need(opts.gatewayWorkers[0]!) > room) problems.push(`bare uWS on ${opts.gatewayWorkers[0]} process(es) would hold ~${need(opts.gatewayWorkers[0]!)} in one`);
  for (const b of opts.baselines) if (opts.conns > room) problems.push(`the ${b} baseline is one process`);
  if (problems.length > 0) {
    const workers = Math.ceil((opts.conns * 1.1) / room);
    throw new Error(`--conns ${opts.conns} exceeds what one server process can hold here (file-descriptor limit ${fdLimit}; raising it needs CAP_SYS_RESOURCE): ${problems.join('; ')}. Use --gateway-workers ${workers} or more (bare uWS then runs as many processes on one port), or at most ${room} connections.`);
  }
}

export async function runBench(opts: BenchOptions): Promise<{ report: Report; files: string[] }> {
  const startedAt = new Date();
  // Each server is one process: it cannot hold more sockets than its descriptor limit. Past it,
  // accept() fails with EMFILE and the event loop spins on the listen socket.
  const fdLimit = effectiveFdLimit();
  checkDescriptors(opts, fdLimit);
  if (opts.gatewayProcs > 1 && opts.store === 'memory') throw new Error('--gateway-procs > 1 needs --store redis or redis-cluster: the processes share rooms through Redis');
  if (opts.scenario === 'drain' && opts.gatewayWorkers.some((w) => w < 2)) throw new Error('drain needs --gateway-workers 2 or more: it restarts the workers one at a time (SIGHUP)');
  const secret = randomBytes(32).toString('base64url');
  // uWS is always run (not for drain, a wsgate-only scenario): it is the calibration of the
  // generator's headroom as well as a baseline. It runs as many processes as wsgate's first worker count.
  const specs = runSpecs(opts);
  const usesRedis = (t: Target): boolean => (t === 'wsgate' ? opts.store !== 'memory' : t !== 'uws');
  // the baselines use a single Redis; wsgate the one --store names
  stage('starting Redis');
  const clusterFor = opts.store === 'redis-cluster' ? await startBenchRedis('redis-cluster') : undefined;
  let redis: BenchRedis | undefined;
  try {
    redis = specs.some((s) => usesRedis(s.target) && !(s.target === 'wsgate' && clusterFor)) ? await startBenchRedis('redis') : undefined;
  } catch (e) {
    await clusterFor?.stop();
    throw e;
  }
  // --tls: a throw-away CA and certificate, removed at the end
  const ca = opts.tls ? makeCa(undefined, opts.tls) : undefined;
  const cert = ca?.issue('bench');
  const runs: RunReport[] = [];
  try {
    for (const s of specs) {
      // the subject once per --gateway-workers count: the first is the subject, the others its scaling runs
      const subject = s.label === 'wsgate';
      const counts = subject ? opts.gatewayWorkers : s.target === 'wsgate' || s.target === 'uws' ? [opts.gatewayWorkers[0]!] : [1];
      for (const [k, workers] of counts.entries()) {
        const procs = s.target === 'wsgate' && opts.gatewayProcs > 1 ? ` on ${opts.gatewayProcs} processes (placement ${opts.placement})` : '';
        const w = workers > 1 ? (s.target === 'wsgate' ? `, ${workers} workers` : `, ${workers} processes on one port`) : '';
        log(opts, `bench ${opts.scenario}: ${s.label}${procs}${w}${s.tls ? ' over TLS' : ''} (${opts.conns} connections, ${opts.workers} generator workers)`);
        const store = !usesRedis(s.target) ? undefined : s.target === 'wsgate' && clusterFor ? clusterFor : redis;
        runs.push(await runTarget(s, opts, store, secret, cert, workers, subject ? (k === 0 ? 'subject' : 'scaling') : 'baseline'));
      }
    }
  } finally {
    await redis?.stop();
    await clusterFor?.stop();
    if (ca) rmSync(ca.dir, { recursive: true, force: true });
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
    scaling: [],
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
  const plain = report.runs.find((r) => r.target === 'wsgate-plain');
  if (report.options.tls && plain) {
    const ratio = (key: string): number | undefined => {
      const x = subject.metrics[key];
      const y = plain.metrics[key];
      return x !== undefined && y !== undefined && y > 0 ? x / y : undefined;
    };
    const up = subject.metrics.cpuUsPerConnUpgrade;
    const upPlain = plain.metrics.cpuUsPerConnUpgrade;
    report.tls = {
      key: report.options.tls,
      upgradeCpuRatio: ratio('cpuUsPerConnUpgrade'),
      upgradeCpuExtraUs: up !== undefined && upPlain !== undefined ? up - upPlain : undefined,
      lifecycleCpuRatio: ratio('cpuUsPerConn'),
      headlineRatio: report.ratios['wsgate-plain']?.headline,
    };
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
  report.scaling = scalingOf(report);
  // The per-core figures a planner multiplies by a node's cores: from the run with the most workers
  // (one per core is how a node runs), which includes what sharing state between workers costs.
  const widest = report.scaling.at(-1);
  if (widest && report.scaling.length > 1 && widest.perCore !== undefined) {
    if (report.scenario === 'connect-storm' || report.scenario === 'reconnect-storm') cap.upgradesPerSecPerCore = widest.perCore;
    if (report.scenario === 'fanout') cap.deliveriesPerSecPerCore = widest.perCore;
    if (report.scenario === 'echo') cap.roundTripsPerSecPerCore = widest.perCore;
    cap.perCoreFromWorkers = widest.workers;
  }
  if (report.scenario === 'hold') {
    // A worker's own memory before any connection: a node of C cores runs C workers.
    const base = subject.metrics.rssBaseBytes;
    const processes = subject.server.perProcess?.filter((p) => !p.root).length || 1;
    if (base !== undefined && base > 0) cap.workerBaseRssBytes = base / (subject.workers > 1 ? processes : 1);
  }
}

/** wsgate's runs by worker count: throughput, the cores they used, each worker's share, per core. */
function scalingOf(report: Report): ScalingPoint[] {
  const runs = report.runs.filter((r) => r.target === 'wsgate');
  if (runs.length < 2) return [];
  const first = runs[0]!;
  return runs.map((r) => {
    const workers = (r.server.perProcess ?? []).filter((p) => !p.root);
    const supervisor = (r.server.perProcess ?? []).find((p) => p.root && r.workers > 1);
    const throughput = r.throughput ?? r.headline.value;
    return {
      workers: r.workers,
      headline: r.headline.value,
      throughput,
      ratioToFirst: first.headline.value > 0 ? r.headline.value / first.headline.value : undefined,
      cpuAvg: r.server.cpuAvg,
      workerCpu: r.workers > 1 ? workers.map((p) => p.cpuAvg) : [r.server.cpuAvg],
      supervisorCpu: supervisor?.cpuAvg ?? 0,
      perCore: r.server.cpuAvg > 0 ? throughput / r.server.cpuAvg : undefined,
      generatorCpu: r.generator.workerCpu.reduce((a, b) => a + b, 0),
    };
  });
}
