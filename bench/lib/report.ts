// The bench report: a versioned JSON schema (documented in docs/BENCH.md) and its Markdown summary.
import type { LatencySummary } from './generator.js';
import type { BenchOptions, ScenarioResult } from '../scenarios.js';

export const SCHEMA = 'wsgate-bench/1';

export interface TimelinePoint {
  /** seconds since the target's run started */
  t: number;
  phase: string;
  /** generator connections open */
  open: number;
  /** replies (or upgrades) per second in the last interval */
  okRate: number;
  deliveriesRate: number;
  /** cumulative errors in the current phase */
  errors: number;
  /** server CPU in the last interval, in cores (1 = one full core) */
  cpu: number;
  rssMB: number;
}

/** One server process of a target (with its descendants: treeProcs counts them). */
export interface ProcessReport {
  pid: number;
  port: number;
  nodeId: string | undefined;
  cpuAvg: number;
  cpuByPhase: Record<string, number>;
  rssMaxBytes: number;
  /** most processes seen in its tree (1: no children) */
  treeProcs: number;
}

/** A figure of a scenario beyond its headline, compared across targets (`ratios.<baseline>.figures`). */
export interface Figure {
  /** key in runs[].metrics */
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

const CPU_PER_CONN: Figure = { key: 'cpuUsPerConn', label: 'server CPU per connection (upgrade+open+close)', unit: 'µs', higherIsBetter: false };
const CPU_PER_UPGRADE: Figure = { key: 'cpuUsPerConnUpgrade', label: 'server CPU per upgrade (accept, TLS handshake if any, upgrade, open)', unit: 'µs', higherIsBetter: false };
/** The figures each scenario compares, besides its headline. */
export const FIGURES: Readonly<Record<string, readonly Figure[]>> = {
  'connect-storm': [CPU_PER_CONN, CPU_PER_UPGRADE],
  'reconnect-storm': [CPU_PER_CONN, CPU_PER_UPGRADE],
  hold: [
    { key: 'rssPerConnSettledBytes', label: 'RSS per connection, settled (no forced GC)', unit: 'bytes', higherIsBetter: false },
    { key: 'heapPerConnSettledBytes', label: 'JS heap per connection, settled (wsgate /metrics)', unit: 'bytes', higherIsBetter: false },
  ],
  http: [
    { key: 'admin-counts.reqPerSec', label: 'server API GET /v1/connections/counts req/s', unit: '/s', higherIsBetter: true },
    { key: 'admin-counts.p99Ms', label: 'server API GET /v1/connections/counts p99', unit: 'ms', higherIsBetter: false },
    { key: 'admin-presence.reqPerSec', label: 'server API GET /v1/rooms/presence req/s', unit: '/s', higherIsBetter: true },
    { key: 'admin-presence.p99Ms', label: 'server API GET /v1/rooms/presence p99', unit: 'ms', higherIsBetter: false },
  ],
  fanout: [
    { key: 'deliveriesPerSec', label: 'deliveries/s', unit: '/s', higherIsBetter: true },
    { key: 'deliveryP99Ms', label: 'delivery p99', unit: 'ms', higherIsBetter: false },
    { key: 'cpuUsPerDelivery', label: 'server CPU per delivery', unit: 'µs', higherIsBetter: false },
    { key: 'redisCpuUsPerDelivery', label: 'Redis CPU per delivery (wsgate: its bus)', unit: 'µs', higherIsBetter: false },
  ],
};

/** wsgate's value of a figure against one baseline's. */
export interface FigureRatio {
  subject: number;
  baseline: number;
  /** subject / baseline; undefined when the baseline's value is 0 */
  ratio: number | undefined;
  /** subject - baseline, in `unit` */
  difference: number;
  /** the difference in KB, for figures in bytes */
  differenceKB?: number;
  unit: string;
  higherIsBetter: boolean;
}

/** One process of a target's trees (a supervisor: root; a worker: not), in the measured phase. */
export interface TreeProcessReport {
  pid: number;
  root: boolean;
  cpuAvg: number;
  rssMaxBytes: number;
}

/** wsgate at one worker count (--gateway-workers 1,2,...). */
export interface ScalingPoint {
  workers: number;
  headline: number;
  throughput: number;
  /** headline / the first count's headline */
  ratioToFirst: number | undefined;
  /** cores the whole target used in the measured phase */
  cpuAvg: number;
  /** each worker's cores in the measured phase */
  workerCpu: number[];
  /** the supervisor's cores (0 for one worker: no supervisor) */
  supervisorCpu: number;
  /** throughput per core used */
  perCore: number | undefined;
  /** the generator's cores in the measured phase (it shares the machine) */
  generatorCpu: number;
}

export interface RunReport extends ScenarioResult {
  target: string;
  /** scaling: wsgate at another --gateway-workers count than the subject's */
  role: 'subject' | 'baseline' | 'scaling';
  /** wsgate: WSGATE_WORKERS; bare uWS: processes on one port */
  workers: number;
  info: Record<string, unknown>;
  /**
   * The target's processes summed (each with its descendants). cpuAvg: cores used during the
   * measured phase; cpuByPhase: cores per phase. perProcess: every process of a multi-process
   * target on its own (a supervisor and each worker).
   */
  server: { cpuAvg: number; cpuByPhase: Record<string, number>; cpuMax: number; rssMaxBytes: number; processes: ProcessReport[]; perProcess?: TreeProcessReport[] };
  generator: { workers: number; addrs: number; workerCpu: number[]; maxWorkerCpu: number };
  timeline: TimelinePoint[];
}

export interface Report {
  schema: typeof SCHEMA;
  scenario: string;
  startedAt: string;
  finishedAt: string;
  options: BenchOptions;
  environment: { cpuModel: string; cores: number; memoryBytes: number; node: string; os: string; uws: Record<string, unknown>; fdLimit: number };
  runs: RunReport[];
  /** wsgate's headline / the baseline's headline, per baseline; `figures`: the scenario's other figures (FIGURES) both targets report */
  ratios: Record<string, { headline: number | undefined; metric: string; higherIsBetter: boolean; figures: Record<string, FigureRatio> }>;
  headroom: { calibrationTarget: 'uws'; ratio: number | undefined; generatorBound: boolean; note: string };
  capacity: {
    connectionsPerGB?: number;
    connectionsPerCore?: number;
    upgradesPerSecPerCore?: number;
    deliveriesPerSecPerCore?: number;
    roundTripsPerSecPerCore?: number;
    /** the per-core figures come from the run with this many workers (--gateway-workers) */
    perCoreFromWorkers?: number;
    /** hold: RSS of one idle worker (a node runs one per core) */
    workerBaseRssBytes?: number;
  };
  /** wsgate per worker count, when --gateway-workers lists several (the generator shares the machine's cores) */
  scaling?: ScalingPoint[];
  /**
   * --tls runs: wsgate over TLS against wsgate in plain text (the baseline wsgate-plain). Ratios are
   * TLS / plain: server CPU per upgrade (the TLS handshake's cost), per connection lifecycle, and
   * the headline; upgradeCpuExtraUs: the handshake's CPU in µs per connection.
   */
  tls?: { key: 'ec' | 'rsa'; upgradeCpuRatio: number | undefined; upgradeCpuExtraUs: number | undefined; lifecycleCpuRatio: number | undefined; headlineRatio: number | undefined };
}

export const fmt = (n: number | undefined, digits = 0): string => {
  if (n === undefined || !Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(digits);
};

export function renderMarkdown(r: Report): string {
  const L: string[] = [];
  const subject = r.runs.find((x) => x.role === 'subject');
  L.push(`# wsgate bench: ${r.scenario}`, '');
  L.push(`${r.startedAt} · ${r.environment.cpuModel}, ${r.environment.cores} cores · Node ${r.environment.node} · uWS ${String(r.environment.uws.uwsBuild ?? '?')} ${String(r.environment.uws.uwsVersion ?? '')}`, '');
  L.push(`${r.options.conns} connections · ${r.options.workers} generator workers · ${r.options.durationSec}s · rate ${r.options.rate || 'closed loop'} · ${r.options.encoding} · store ${r.options.store}${r.options.gatewayProcs > 1 ? ` · ${r.options.gatewayProcs} wsgate processes, placement ${r.options.placement ?? 'mixed'}` : ''}${Object.keys(r.options.gatewayEnv ?? {}).length ? ` · ${Object.entries(r.options.gatewayEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`, '');
  L.push('## Headline (ratios are the result; absolute numbers are noise on shared machines)', '');
  L.push('| target | ' + (subject?.headline.metric ?? 'headline') + ' | wsgate / target | server CPU (cores) | server RSS max |', '|---|---|---|---|---|');
  for (const run of r.runs.filter((x) => x.role !== 'scaling')) {
    const ratio = run.role === 'subject' ? '1.00' : fmt(r.ratios[run.target]?.headline, 2);
    L.push(`| ${label(run)} | ${fmt(run.headline.value, run.headline.value < 100 ? 2 : 0)} ${run.headline.unit} | ${ratio} | ${run.server.cpuAvg.toFixed(2)} | ${(run.server.rssMaxBytes / 1048576).toFixed(0)} MB |`);
  }
  L.push('', `Generator headroom: ${r.headroom.note || 'n/a'}.`, '');
  if (r.tls) {
    L.push(`TLS (${r.tls.key} key, a full handshake per connection): wsgate over TLS / wsgate in plain text: server CPU per upgrade ${fmt(r.tls.upgradeCpuRatio, 3)} (${r.tls.upgradeCpuExtraUs === undefined ? 'n/a' : `+${r.tls.upgradeCpuExtraUs.toFixed(1)} µs`}), per connection lifecycle ${fmt(r.tls.lifecycleCpuRatio, 3)}, ${subject?.headline.metric ?? 'headline'} ${fmt(r.tls.headlineRatio, 3)}.`, '');
  }
  L.push(...figuresTable(r));
  L.push(...scalingTable(r));
  L.push(...processesTable(r));
  L.push('## Latency (ms)', '', '| target | series | count | p50 | p90 | p99 | p99.9 | max |', '|---|---|---|---|---|---|---|---|');
  for (const run of r.runs) for (const [k, l] of Object.entries(run.latency)) L.push(`| ${label(run)} | ${k} | ${l.count} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${l.max} |`);
  L.push('', '## Metrics', '');
  for (const run of r.runs) {
    L.push(`- **${label(run)}**: ` + Object.entries(run.metrics).map(([k, v]) => `${k} ${fmt(v, v < 10 ? 3 : 0)}`).join(', '));
    const errs = Object.entries(run.errors);
    if (errs.length) L.push(`  - errors/refusals: ` + errs.map(([k, v]) => `${k}: ${v}`).join(', '));
    L.push(`  - generator CPU per worker: ${run.generator.workerCpu.map((c) => `${(c * 100).toFixed(0)}%`).join(', ') || 'n/a'}`);
  }
  for (const run of r.runs.filter((x) => x.series && Object.keys(x.series).length > 0)) {
    const keys = Object.keys(run.series!);
    const secs = Math.max(...keys.map((k) => run.series![k]!.length));
    L.push('', `### ${label(run)}: per second`, '', `| second | ${keys.join(' | ')} |`, `|---|${keys.map(() => '---|').join('')}`);
    for (let i = 0; i < secs; i++) L.push(`| ${i} | ${keys.map((k) => run.series![k]![i] ?? 0).join(' | ')} |`);
  }
  const cap = Object.entries(r.capacity);
  if (cap.length) {
    L.push('', '## Capacity (wsgate, from this run)', '');
    for (const [k, v] of cap) L.push(`- ${k}: ${fmt(v)}`);
    L.push('', 'Plan a deployment: `npm run plan -- --connections N --deliveries N --report report.json`.');
  }
  return L.join('\n') + '\n';
}

/** A run's name in tables: the target, with its workers when it had several. */
export const label = (run: Pick<RunReport, 'target' | 'workers'>): string => (run.workers > 1 ? `${run.target} (${run.workers} ${run.target === 'wsgate' ? 'workers' : 'processes'})` : run.target);

/** wsgate per worker count: how throughput grows with cores. */
function scalingTable(r: Report): string[] {
  const points = r.scaling ?? [];
  if (points.length < 2) return [];
  const L = ['## Scaling with workers (wsgate)', ''];
  L.push(`The generator runs on the same ${r.environment.cores} cores as the gateway: on a machine with few cores, more workers compete with it, so the ratio understates what separate cores would give. CPU is in cores (1 = one full core) over the measured phase.`, '');
  L.push('| workers | headline | / first | server CPU | per worker | supervisor | per core used | generator CPU |', '|---|---|---|---|---|---|---|---|');
  for (const p of points) {
    L.push(`| ${p.workers} | ${fmt(p.headline, p.headline < 100 ? 2 : 0)} | ${fmt(p.ratioToFirst, 2)} | ${p.cpuAvg.toFixed(2)} | ${p.workerCpu.map((c) => c.toFixed(2)).join(', ')} | ${p.supervisorCpu.toFixed(2)} | ${fmt(p.perCore)} | ${p.generatorCpu.toFixed(2)} |`);
  }
  L.push('');
  return L;
}

const KB = 1024;
const figureValue = (f: Figure, v: number | undefined): string => (v === undefined ? 'n/a' : f.unit === 'bytes' ? `${(v / KB).toFixed(2)} KB` : `${fmt(v, v < 100 ? 2 : 0)} ${f.unit}`);

/** The scenario's figures (FIGURES) per target, and wsgate / each baseline (bytes: with the difference in KB). */
export function figuresTable(r: Report): string[] {
  const figures = (FIGURES[r.scenario] ?? []).filter((f) => r.runs.some((run) => run.metrics[f.key] !== undefined));
  if (figures.length === 0) return [];
  const baselines = r.runs.filter((x) => x.role === 'baseline').map((x) => x.target);
  const L = ['## Key figures', ''];
  const runs = r.runs.filter((x) => x.role !== 'scaling');
  L.push(`| figure | ${runs.map(label).join(' | ')} | ${baselines.map((b) => `wsgate / ${b}`).join(' | ')} |`);
  L.push(`|---|${runs.map(() => '---|').join('')}${baselines.map(() => '---|').join('')}`);
  for (const f of figures) {
    const ratios = baselines.map((b) => {
      const x = r.ratios[b]?.figures[f.key];
      if (!x) return 'n/a';
      return `${fmt(x.ratio, 2)}${x.differenceKB !== undefined ? ` (${x.differenceKB >= 0 ? '+' : ''}${x.differenceKB.toFixed(2)} KB)` : ''}`;
    });
    L.push(`| ${f.label}${f.higherIsBetter ? '' : ' (lower is better)'} | ${runs.map((x) => figureValue(f, x.metrics[f.key])).join(' | ')} | ${ratios.join(' | ')} |`);
  }
  L.push('');
  return L;
}

/** Per process, where a target ran as several processes or a process had children. */
function processesTable(r: Report): string[] {
  const runs = r.runs.filter((x) => x.server.processes.length > 1 || x.server.processes.some((p) => p.treeProcs > 1));
  if (runs.length === 0) return [];
  const L = ['## Processes', '', '| target | pid | port | node | CPU (cores, measured phase) | RSS max | processes in tree |', '|---|---|---|---|---|---|---|'];
  for (const run of runs) for (const p of run.server.processes) L.push(`| ${label(run)} | ${p.pid} | ${p.port} | ${p.nodeId ?? ''} | ${p.cpuAvg.toFixed(2)} | ${(p.rssMaxBytes / 1048576).toFixed(0)} MB | ${p.treeProcs} |`);
  const trees = runs.filter((x) => (x.server.perProcess?.length ?? 0) > 1);
  if (trees.length > 0) {
    L.push('', 'Each process of the trees (a supervisor and its workers; a supervisor\'s CPU includes that of the workers it reaped, e.g. in a drain or a restart):', '', '| target | pid | role | CPU (cores, measured phase) | RSS max |', '|---|---|---|---|---|');
    for (const run of trees) for (const p of run.server.perProcess!) L.push(`| ${label(run)} | ${p.pid} | ${p.root && run.target === 'wsgate' && run.workers > 1 ? 'supervisor' : 'worker'} | ${p.cpuAvg.toFixed(2)} | ${(p.rssMaxBytes / 1048576).toFixed(0)} MB |`);
  }
  L.push('');
  return L;
}
