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
/** The figures each scenario compares, besides its headline. */
export const FIGURES: Readonly<Record<string, readonly Figure[]>> = {
  'connect-storm': [CPU_PER_CONN],
  'reconnect-storm': [CPU_PER_CONN],
  hold: [
    { key: 'rssPerConnSettledBytes', label: 'RSS per connection, settled (no forced GC)', unit: 'bytes', higherIsBetter: false },
    { key: 'heapPerConnSettledBytes', label: 'JS heap per connection, settled (wsgate /metrics)', unit: 'bytes', higherIsBetter: false },
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

export interface RunReport extends ScenarioResult {
  target: string;
  role: 'subject' | 'baseline';
  info: Record<string, unknown>;
  /** the target's processes summed (each with its descendants). cpuAvg: cores used during the measured phase; cpuByPhase: cores per phase */
  server: { cpuAvg: number; cpuByPhase: Record<string, number>; cpuMax: number; rssMaxBytes: number; processes: ProcessReport[] };
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
  capacity: { connectionsPerGB?: number; connectionsPerCore?: number; upgradesPerSecPerCore?: number; deliveriesPerSecPerCore?: number; roundTripsPerSecPerCore?: number };
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
  for (const run of r.runs) {
    const ratio = run.role === 'subject' ? '1.00' : fmt(r.ratios[run.target]?.headline, 2);
    L.push(`| ${run.target} | ${fmt(run.headline.value, run.headline.value < 100 ? 2 : 0)} ${run.headline.unit} | ${ratio} | ${run.server.cpuAvg.toFixed(2)} | ${(run.server.rssMaxBytes / 1048576).toFixed(0)} MB |`);
  }
  L.push('', `Generator headroom: ${r.headroom.note || 'n/a'}.`, '');
  L.push(...figuresTable(r));
  L.push(...processesTable(r));
  L.push('## Latency (ms)', '', '| target | series | count | p50 | p90 | p99 | p99.9 | max |', '|---|---|---|---|---|---|---|---|');
  for (const run of r.runs) for (const [k, l] of Object.entries(run.latency)) L.push(`| ${run.target} | ${k} | ${l.count} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${l.max} |`);
  L.push('', '## Metrics', '');
  for (const run of r.runs) {
    L.push(`- **${run.target}**: ` + Object.entries(run.metrics).map(([k, v]) => `${k} ${fmt(v, v < 10 ? 3 : 0)}`).join(', '));
    const errs = Object.entries(run.errors);
    if (errs.length) L.push(`  - errors/refusals: ` + errs.map(([k, v]) => `${k}: ${v}`).join(', '));
    L.push(`  - generator CPU per worker: ${run.generator.workerCpu.map((c) => `${(c * 100).toFixed(0)}%`).join(', ') || 'n/a'}`);
  }
  const cap = Object.entries(r.capacity);
  if (cap.length) {
    L.push('', '## Capacity (wsgate, from this run)', '');
    for (const [k, v] of cap) L.push(`- ${k}: ${fmt(v)}`);
    L.push('', 'Plan a deployment: `npm run plan -- --connections N --deliveries N --report report.json`.');
  }
  return L.join('\n') + '\n';
}

const KB = 1024;
const figureValue = (f: Figure, v: number | undefined): string => (v === undefined ? 'n/a' : f.unit === 'bytes' ? `${(v / KB).toFixed(2)} KB` : `${fmt(v, v < 100 ? 2 : 0)} ${f.unit}`);

/** The scenario's figures (FIGURES) per target, and wsgate / each baseline (bytes: with the difference in KB). */
export function figuresTable(r: Report): string[] {
  const figures = (FIGURES[r.scenario] ?? []).filter((f) => r.runs.some((run) => run.metrics[f.key] !== undefined));
  if (figures.length === 0) return [];
  const baselines = r.runs.filter((x) => x.role === 'baseline').map((x) => x.target);
  const L = ['## Key figures', ''];
  L.push(`| figure | ${r.runs.map((x) => x.target).join(' | ')} | ${baselines.map((b) => `wsgate / ${b}`).join(' | ')} |`);
  L.push(`|---|${r.runs.map(() => '---|').join('')}${baselines.map(() => '---|').join('')}`);
  for (const f of figures) {
    const ratios = baselines.map((b) => {
      const x = r.ratios[b]?.figures[f.key];
      if (!x) return 'n/a';
      return `${fmt(x.ratio, 2)}${x.differenceKB !== undefined ? ` (${x.differenceKB >= 0 ? '+' : ''}${x.differenceKB.toFixed(2)} KB)` : ''}`;
    });
    L.push(`| ${f.label}${f.higherIsBetter ? '' : ' (lower is better)'} | ${r.runs.map((x) => figureValue(f, x.metrics[f.key])).join(' | ')} | ${ratios.join(' | ')} |`);
  }
  L.push('');
  return L;
}

/** Per process, where a target ran as several processes or a process had children. */
function processesTable(r: Report): string[] {
  const runs = r.runs.filter((x) => x.server.processes.length > 1 || x.server.processes.some((p) => p.treeProcs > 1));
  if (runs.length === 0) return [];
  const L = ['## Processes', '', '| target | pid | port | node | CPU (cores, measured phase) | RSS max | processes in tree |', '|---|---|---|---|---|---|---|'];
  for (const run of runs) for (const p of run.server.processes) L.push(`| ${run.target} | ${p.pid} | ${p.port} | ${p.nodeId ?? ''} | ${p.cpuAvg.toFixed(2)} | ${(p.rssMaxBytes / 1048576).toFixed(0)} MB | ${p.treeProcs} |`);
  L.push('');
  return L;
}
