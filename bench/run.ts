// Runs one scenario against wsgate and its baselines in one invocation, samples the servers,
// and writes the report (JSON, Markdown, HTML). Importable: `runBench(options)`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Target } from './lib/dialects.js';
import { Generator } from './lib/generator.js';
import { renderHtml } from './lib/html.js';
import { cpuModel, effectiveFdLimit, listenOverflows, sampleProc } from './lib/procs.js';
import { startRedisServer, type RedisServer } from './lib/redis-server.js';
import { renderMarkdown, SCHEMA, type Report, type RunReport, type TimelinePoint } from './lib/report.js';
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

async function runTarget(target: Target, opts: BenchOptions, redis: RedisServer | undefined, secret: string): Promise<RunReport> {
  const jtiPrefix = `bench-${randomBytes(4).toString('hex')}-`;
  const running = await startTarget(target, { secret, redisUrl: redis?.url });
  const gen = await Generator.start({
    target,
    encoding: opts.encoding,
    port: running.port,
    workers: opts.workers,
    conns: opts.conns,
    secret,
    tenant: 'bench',
    rooms: opts.rooms,
    jtiPrefix,
    tokenTtlSec: 6 * 3600,
    reuseTokens: opts.reuseTokens,
  });
  const timeline: TimelinePoint[] = [];
  let phase = 'start';
  const t0 = Date.now();
  let last = { t: t0, ok: 0, deliveries: 0, cpuMs: sampleProc(running.pid)?.cpuMs ?? 0, phase };
  let lastRss = sampleProc(running.pid)?.rssBytes ?? 0;
  const tty = process.stderr.isTTY && !opts.quiet;
  let lastLine = 0;
  // CPU per phase: the measured phase's share is the server CPU the report states.
  const phases: Array<{ name: string; t: number; cpuMs: number }> = [];
  const tick = (): void => {
    const now = Date.now();
    if (now - last.t < 20) return;
    const s = sampleProc(running.pid);
    const g = gen.totals();
    if (phase !== last.phase) last = { ...last, ok: 0, deliveries: 0, phase };
    const dt = (now - last.t) / 1000;
    const point: TimelinePoint = {
      t: (now - t0) / 1000,
      phase,
      open: g.open,
      okRate: Math.max(0, (g.ok - last.ok) / dt),
      deliveriesRate: Math.max(0, (g.deliveries - last.deliveries) / dt),
      errors: g.errors,
      cpu: s ? (s.cpuMs - last.cpuMs) / (now - last.t) : 0,
      rssMB: s ? s.rssBytes / 1048576 : 0,
    };
    timeline.push(point);
    if (s) lastRss = s.rssBytes;
    last = { t: now, ok: g.ok, deliveries: g.deliveries, cpuMs: s?.cpuMs ?? last.cpuMs, phase };
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
      phases.push({ name: p, t: Date.now(), cpuMs: sampleProc(running.pid)?.cpuMs ?? 0 });
    },
    rss: () => sampleProc(running.pid)?.rssBytes ?? lastRss,
    cpuMs: () => sampleProc(running.pid)?.cpuMs ?? 0,
  };
  const overflows0 = listenOverflows();
  try {
    const r = await scenarios[opts.scenario](ctx);
    tick();
    // Handshakes the kernel dropped because the server's accept queue was full (uWS listens with a
    // backlog of 512): above that many upgrades in flight, the figure measures the queue, not wsgate.
    r.metrics.listenOverflows = listenOverflows() - overflows0;
    phases.push({ name: 'end', t: Date.now(), cpuMs: sampleProc(running.pid)?.cpuMs ?? 0 });
    const cpuByPhase: Record<string, number> = {};
    for (let i = 0; i + 1 < phases.length; i++) {
      const a = phases[i]!;
      const b = phases[i + 1]!;
      if (b.t > a.t) cpuByPhase[a.name] = (b.cpuMs - a.cpuMs) / (b.t - a.t); // the last occurrence wins
    }
    return {
      target,
      role: target === 'wsgate' ? 'subject' : 'baseline',
      info: running.info,
      ...r,
      server: {
        cpuAvg: cpuByPhase[MEASURED[opts.scenario]] ?? 0,
        cpuByPhase,
        cpuMax: Math.max(0, ...timeline.map((p) => p.cpu)),
        rssMaxBytes: Math.max(0, ...timeline.map((p) => p.rssMB * 1048576)),
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
  const secret = randomBytes(32).toString('base64url');
  const needRedis = opts.store === 'redis' || opts.baselines.includes('socketio');
  const redis = needRedis ? await startRedisServer() : undefined;
  // uWS is always run: it is the calibration of the generator's headroom as well as a baseline.
  const targets: Target[] = ['wsgate', 'uws', ...opts.baselines.filter((b) => b !== 'uws')];
  const runs: RunReport[] = [];
  try {
    for (const t of targets) {
      log(opts, `bench ${opts.scenario}: ${t} (${opts.conns} connections, ${opts.workers} workers)`);
      const store = t === 'uws' || (t === 'wsgate' && opts.store === 'memory') ? undefined : redis;
      runs.push(await runTarget(t, opts, store, secret));
    }
  } finally {
    await redis?.stop();
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
    report.ratios[b.target] = { headline: ratio, metric: subject.headline.metric, higherIsBetter: subject.headline.higherIsBetter };
  }
  const calib = report.runs.find((r) => r.target === 'uws');
  const maxWorkerCpu = Math.max(0, ...report.runs.map((r) => r.generator.maxWorkerCpu));
  if (calib && subject.throughput !== undefined && calib.throughput !== undefined && subject.throughput > 0) {
    const ratio = calib.throughput / subject.throughput;
    const paced = report.options.rate > 0 || report.scenario === 'fanout';
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
