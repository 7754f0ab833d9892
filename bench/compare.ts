// npm run bench:compare -- a.json b.json: deltas between two reports of the same scenario, with
// a noise warning where the runs' spreads (per-interval rates over the measured phase) overlap.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Report, RunReport } from './lib/report.js';

const USAGE = 'usage: npm run bench:compare -- a.json b.json\n';
let files: string[];
try {
  files = parseArgs({ args: process.argv.slice(2), strict: true, allowPositionals: true, options: {} }).positionals;
} catch (e) {
  process.stderr.write(`bench:compare: ${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (files.length !== 2) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const [a, b] = files as [string, string];
const A = JSON.parse(readFileSync(a, 'utf8')) as Report;
const B = JSON.parse(readFileSync(b, 'utf8')) as Report;
if (A.scenario !== B.scenario) process.stdout.write(`warning: comparing different scenarios (${A.scenario} vs ${B.scenario})\n`);

/** mean and standard deviation of the per-interval rate during the measured phase */
function spread(run: RunReport): { mean: number; sd: number; n: number } {
  const key = run.timeline.some((p) => p.deliveriesRate > 0) ? 'deliveriesRate' : 'okRate';
  const phase = run.timeline.reduce<Record<string, number>>((m, p) => ((m[p.phase] = (m[p.phase] ?? 0) + p[key]), m), {});
  const main = Object.entries(phase).sort((x, y) => y[1] - x[1])[0]?.[0];
  const xs = run.timeline.filter((p) => p.phase === main && p[key] > 0).map((p) => p[key]);
  const n = xs.length;
  const mean = n ? xs.reduce((s, x) => s + x, 0) / n : 0;
  const sd = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

const pct = (x: number, y: number): string => (x === 0 ? 'n/a' : `${(((y - x) / x) * 100).toFixed(1)}%`);
process.stdout.write(`${A.scenario}: ${a} (${A.startedAt}) -> ${b} (${B.startedAt})\n\n`);
for (const ra of A.runs) {
  const rb = B.runs.find((r) => r.target === ra.target);
  if (!rb) continue;
  const sa = spread(ra);
  const sb = spread(rb);
  const overlap = sa.n > 1 && sb.n > 1 && Math.abs(sa.mean - sb.mean) < sa.sd + sb.sd;
  process.stdout.write(`${ra.target}: ${ra.headline.metric} ${ra.headline.value.toFixed(1)} -> ${rb.headline.value.toFixed(1)} (${pct(ra.headline.value, rb.headline.value)})${overlap ? '  [noise: the spreads overlap]' : sa.n < 2 || sb.n < 2 ? '  [too few intervals to judge noise]' : ''}\n`);
  for (const k of Object.keys(ra.latency)) {
    const la = ra.latency[k]!;
    const lb = rb.latency[k];
    if (!lb) continue;
    process.stdout.write(`  ${k}: p50 ${la.p50} -> ${lb.p50} ms (${pct(la.p50, lb.p50)}), p99 ${la.p99} -> ${lb.p99} ms (${pct(la.p99, lb.p99)}), max ${la.max} -> ${lb.max} ms\n`);
  }
  process.stdout.write(`  server CPU ${ra.server.cpuAvg.toFixed(2)} -> ${rb.server.cpuAvg.toFixed(2)} cores, RSS max ${(ra.server.rssMaxBytes / 1048576).toFixed(0)} -> ${(rb.server.rssMaxBytes / 1048576).toFixed(0)} MB\n`);
}
for (const [t, ra] of Object.entries(A.ratios)) {
  const rb = B.ratios[t];
  if (ra.headline !== undefined && rb?.headline !== undefined) process.stdout.write(`ratio wsgate/${t}: ${ra.headline.toFixed(3)} -> ${rb.headline.toFixed(3)}\n`);
  // the scenario's other figures (absent from reports written before they existed)
  for (const [k, fa] of Object.entries(ra.figures ?? {})) {
    const fb = rb?.figures?.[k];
    if (fa.ratio !== undefined && fb?.ratio !== undefined) process.stdout.write(`  ${k} wsgate/${t}: ${fa.ratio.toFixed(3)} -> ${fb.ratio.toFixed(3)}\n`);
  }
}
