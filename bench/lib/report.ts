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

export interface RunReport extends ScenarioResult {
  target: string;
  role: 'subject' | 'baseline';
  info: Record<string, unknown>;
  /** cpuAvg: cores used during the measured phase; cpuByPhase: cores per phase */
  server: { cpuAvg: number; cpuByPhase: Record<string, number>; cpuMax: number; rssMaxBytes: number };
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
  /** wsgate's headline / the baseline's headline, per baseline */
  ratios: Record<string, { headline: number | undefined; metric: string; higherIsBetter: boolean }>;
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
  L.push(`${r.options.conns} connections · ${r.options.workers} generator workers · ${r.options.durationSec}s · rate ${r.options.rate || 'closed loop'} · ${r.options.encoding} · store ${r.options.store}`, '');
  L.push('## Headline (ratios are the result; absolute numbers are noise on shared machines)', '');
  L.push('| target | ' + (subject?.headline.metric ?? 'headline') + ' | wsgate / target | server CPU (cores) | server RSS max |', '|---|---|---|---|---|');
  for (const run of r.runs) {
    const ratio = run.role === 'subject' ? '1.00' : fmt(r.ratios[run.target]?.headline, 2);
    L.push(`| ${run.target} | ${fmt(run.headline.value, run.headline.value < 100 ? 2 : 0)} ${run.headline.unit} | ${ratio} | ${run.server.cpuAvg.toFixed(2)} | ${(run.server.rssMaxBytes / 1048576).toFixed(0)} MB |`);
  }
  L.push('', `Generator headroom: ${r.headroom.note || 'n/a'}.`, '');
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
