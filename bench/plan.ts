// npm run plan -- --connections 1000000 --deliveries 500000 --report r.json [--report r2.json]
//   [--cores 2] [--memory-gb 4] [--utilization 0.7] [--fd-limit 20000]
// States the nodes needed and which resource binds, from the capacity figures of bench reports
// (hold: connections per GB and per core, a worker's own memory; fanout: deliveries/s per core;
// connect-storm: upgrades/s per core). A node runs one worker per core (WSGATE_WORKERS=auto): the
// CPU figures are per core and multiply by the node's cores (from a run with several workers when
// the report has one: --gateway-workers 1,2), each worker's own memory is taken off the node's,
// and with --fd-limit each worker holds at most that many descriptors (--workers: more workers
// than cores, to hold more connections under a per-process limit).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Report } from './lib/report.js';

export interface PlanInput {
  connections: number;
  deliveries: number;
  upgrades: number;
  cores: number;
  memoryGB: number;
  utilization: number;
  /** a process's descriptor limit (0: not a constraint) */
  fdLimit?: number;
  /** workers per node (default: one per core) */
  workers?: number;
  capacity: Report['capacity'];
}

/** Descriptors a worker keeps for itself (Redis, logs, files) and for pending upgrades (WSGATE_MAX_PENDING_UPGRADES default: an eighth, at most 4096). */
const reservedFds = (limit: number): number => 256 + Math.max(16, Math.min(4096, Math.floor(limit / 8)));

export interface PlanResult {
  nodes: number;
  binding: string;
  needs: Array<{ resource: string; perNode: number | undefined; nodes: number | undefined }>;
  missing: string[];
}

export function plan(p: PlanInput): PlanResult {
  const c = p.capacity;
  const u = p.utilization;
  // Memory left for connections once each worker's own is taken (one worker per core).
  const workers = p.workers || p.cores;
  const memoryForConns = Math.max(0, p.memoryGB * u - (workers * (c.workerBaseRssBytes ?? 0)) / 1073741824);
  const needs: PlanResult['needs'] = [
    { resource: 'memory (connections per GB)', perNode: c.connectionsPerGB && c.connectionsPerGB * memoryForConns, nodes: undefined },
    { resource: 'CPU (idle connections per core)', perNode: c.connectionsPerCore && c.connectionsPerCore * p.cores * u, nodes: undefined },
    { resource: 'CPU (deliveries/s per core)', perNode: c.deliveriesPerSecPerCore && c.deliveriesPerSecPerCore * p.cores * u, nodes: undefined },
    { resource: 'CPU (upgrades/s per core)', perNode: c.upgradesPerSecPerCore && c.upgradesPerSecPerCore * p.cores * u, nodes: undefined },
  ];
  const demand = [p.connections, p.connections, p.deliveries, p.upgrades];
  if (p.fdLimit) {
    needs.push({ resource: `descriptors (${workers} workers x ${p.fdLimit})`, perNode: workers * Math.max(0, p.fdLimit - reservedFds(p.fdLimit)), nodes: undefined });
    demand.push(p.connections);
  }
  const missing: string[] = [];
  needs.forEach((n, i) => {
    if (demand[i] === 0) return;
    if (!n.perNode) missing.push(n.resource);
    else n.nodes = Math.ceil(demand[i]! / n.perNode);
  });
  const best = needs.filter((n) => n.nodes !== undefined).sort((a, b) => b.nodes! - a.nodes!)[0];
  return { nodes: best?.nodes ?? 0, binding: best?.resource ?? 'unknown', needs, missing };
}

const USAGE = 'usage: npm run plan -- --connections N --deliveries N [--upgrades N] --report r.json [--report r2.json] [--cores 2] [--memory-gb 4] [--utilization 0.7] [--fd-limit N] [--workers N]\n';

function main(): void {
  const str = { type: 'string' } as const;
  let v;
  try {
    v = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: { connections: str, deliveries: str, upgrades: str, report: { type: 'string', multiple: true }, cores: str, 'memory-gb': str, utilization: str, 'fd-limit': str, workers: str },
    }).values;
  } catch (e) {
    process.stderr.write(`plan: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const reports = v.report ?? [];
  if (reports.length === 0) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const num = (k: Exclude<keyof typeof v, 'report'>, d: number): number => {
    const n = v[k] === undefined ? d : Number(v[k]);
    if (!Number.isFinite(n) || n < 0 || v[k]?.trim() === '') {
      process.stderr.write(`plan: --${k}: "${v[k]}" is not a non-negative number\n`);
      process.exit(2);
    }
    return n;
  };
  const demand = {
    connections: num('connections', 0),
    deliveries: num('deliveries', 0),
    upgrades: num('upgrades', 0),
    cores: num('cores', 2),
    memoryGB: num('memory-gb', 4),
    utilization: num('utilization', 0.7),
    fdLimit: num('fd-limit', 0),
    workers: num('workers', 0),
  };
  const capacity: Report['capacity'] = {};
  for (const f of reports) Object.assign(capacity, (JSON.parse(readFileSync(f, 'utf8')) as Report).capacity);
  const input: PlanInput = { ...demand, capacity };
  const r = plan(input);
  process.stdout.write(`Demand: ${input.connections} connections, ${input.deliveries} deliveries/s, ${input.upgrades} upgrades/s\n`);
  process.stdout.write(`Node: ${input.cores} cores, ${input.workers || input.cores} workers, ${input.memoryGB} GB, planned at ${(input.utilization * 100).toFixed(0)}% utilization\n`);
  if (capacity.perCoreFromWorkers) process.stdout.write(`CPU figures: per core, from the run on ${capacity.perCoreFromWorkers} workers (what sharing state between workers costs included)\n`);
  if (capacity.workerBaseRssBytes) process.stdout.write(`Each worker's own memory: ${(capacity.workerBaseRssBytes / 1048576).toFixed(0)} MB, taken off the node's before connections\n`);
  process.stdout.write('\n');
  for (const n of r.needs) process.stdout.write(`  ${n.resource.padEnd(34)} per node ${n.perNode === undefined ? 'unknown' : Math.floor(n.perNode).toString().padStart(10)}  -> ${n.nodes === undefined ? '-' : n.nodes} nodes\n`);
  process.stdout.write(`\nNodes needed: ${r.nodes} (binding resource: ${r.binding})\n`);
  if (r.missing.length) process.stdout.write(`Not covered by the reports given (run the matching scenario): ${r.missing.join('; ')}\n`);
}

if (process.argv[1] && /plan\.(js|ts)$/.test(process.argv[1])) main();
