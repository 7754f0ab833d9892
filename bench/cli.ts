// npm run bench -- <scenario> [options]   (npm run bench -- --help)
import { resolve } from 'node:path';
import { runBench } from './run.js';
import { SCENARIOS, type BenchOptions, type ScenarioName } from './scenarios.js';

const HELP = `Usage: npm run bench -- <scenario> [options]

Scenarios: ${SCENARIOS.join(', ')}

Options (defaults in brackets):
  --conns N          connections [1000]
  --workers N        generator worker processes [2]
  --duration S       seconds of the measured phase [10]
  --rate N           open-loop rate over all workers, ops/s; 0 = closed loop [0]
                     (connect-storm: upgrades/s; echo: requests/s; fanout: publishes/s [1000 x publishers])
  --concurrency N    upgrades in flight in closed loop (connect-storm) [256]
  --window N         requests in flight per connection in closed-loop echo [1]
  --rooms N          rooms the connections are spread over [10]
  --publishers N     publishing connections in fanout [10]
  --payload N        publish payload bytes [64]
  --revoked F        share of revoked tokens in the revocation scenario [0.1]
  --encoding E       json | msgpack (wsgate only; baselines speak JSON) [json]
  --reuse-tokens     100 tokens shared by all connections (verifier-cache hits)
  --baseline LIST    extra baselines: socketio, all [none]; bare uWS always runs (calibration)
  --store S          redis | memory for wsgate [redis]
  --out DIR          where reports go [bench/results]
  --quiet            no progress output
`;

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const [scenario, ...rest] = argv;
  if (!scenario || scenario === '--help' || !(SCENARIOS as readonly string[]).includes(scenario)) {
    process.stdout.write(HELP);
    process.exit(scenario === '--help' ? 0 : 2);
  }
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--reuse-tokens' || a === '--quiet') flags.set(a.slice(2), 'true');
    else if (a.startsWith('--')) flags.set(a.slice(2), rest[++i] ?? '');
  }
  const num = (k: string, d: number): number => {
    const v = flags.get(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      process.stderr.write(`--${k}: "${v}" is not a non-negative number\n`);
      process.exit(2);
    }
    return n;
  };
  const base = flags.get('baseline') ?? '';
  const baselines = base === 'all' ? (['socketio'] as const) : (base.split(',').filter((b) => b === 'socketio' || b === 'uws') as Array<'uws' | 'socketio'>);
  const conns = num('conns', 1000);
  return {
    scenario: scenario as ScenarioName,
    conns,
    workers: Math.max(1, num('workers', 2)),
    durationSec: num('duration', 10),
    rate: num('rate', 0),
    concurrency: Math.max(1, num('concurrency', 256)),
    window: Math.max(1, num('window', 1)),
    rooms: Math.max(1, num('rooms', 10)),
    publishers: Math.max(1, num('publishers', 10)),
    payloadBytes: num('payload', 64),
    revokedShare: num('revoked', 0.1),
    encoding: flags.get('encoding') === 'msgpack' ? 'msgpack' : 'json',
    reuseTokens: flags.get('reuse-tokens') === 'true',
    baselines,
    store: flags.get('store') === 'memory' ? 'memory' : 'redis',
    outDir: resolve(flags.get('out') ?? 'bench/results'),
    quiet: flags.get('quiet') === 'true',
  };
}

const opts = parseBenchArgs(process.argv.slice(2));
runBench(opts).then(
  ({ report, files }) => {
    const subject = report.runs.find((r) => r.role === 'subject')!;
    process.stdout.write(`${report.scenario}: wsgate ${subject.headline.metric} = ${subject.headline.value.toFixed(1)}\n`);
    for (const [t, r] of Object.entries(report.ratios)) process.stdout.write(`  wsgate / ${t} = ${r.headline === undefined ? 'n/a' : r.headline.toFixed(3)}\n`);
    process.stdout.write(`  headroom: ${report.headroom.note}\n`);
    for (const f of files) process.stdout.write(`  ${f}\n`);
  },
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
