// npm run bench -- <scenario> [options]   (npm run bench -- --help)
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Baseline } from './lib/dialects.js';
import { FIGURES, type Report } from './lib/report.js';
import { currentStage } from './lib/stage.js';
import { runBench } from './run.js';
import { SCENARIOS, type BenchOptions, type ScenarioName } from './scenarios.js';

// Killed from outside (a CI timeout): say where the run stood, so a hang can be found.
process.once('SIGTERM', () => {
  process.stderr.write(`bench: terminated (SIGTERM) during: ${currentStage()}\n`);
  process.exit(143);
});

const HELP = `Usage: npm run bench -- <scenario> [options]

Scenarios: ${SCENARIOS.join(', ')}

Options (defaults in brackets):
  --conns N          connections [1000]
  --workers N        generator worker processes [2]
  --duration S       seconds of the measured phase [10]
  --rate N           open-loop rate over all workers, ops/s; 0 = closed loop [0]
                     (connect-storm: upgrades/s; echo: requests/s; fanout: publishes/s [1000 x publishers])
  --concurrency N    upgrades in flight in closed loop (connect-storm) [256]
  --window N         requests in flight per connection in closed-loop echo, and per publisher
                     in fanout --saturate [1]
  --rooms N          rooms the connections are spread over [10]
  --publishers N     publishing connections in fanout [10]
  --payload N        publish payload bytes [64]
  --saturate         fanout in closed loop: each publisher keeps --window publishes in flight
                     (deliveries/s at saturation); without it fanout is paced at --rate
  --settle S         hold: seconds after the connections joined before the settled RSS reading [3]
  --warmup N         connections opened and closed before the scenario, with tokens of their
                     own, so it runs on a JIT-warm server [0]
  --revoked F        share of revoked tokens in the revocation scenario, 0..1 [0.1]
  --encoding E       json | msgpack (wsgate only; baselines speak JSON) [json]
  --reuse-tokens     100 tokens shared by all connections (verifier-cache hits)
  --baseline LIST    extra baselines, comma-separated: naive, socketio, or all [none];
                     bare uWS always runs (calibration)
  --gateway-procs N  wsgate processes on one Redis (or cluster), each on its own port; the
                     generator spreads connections over them (--placement) [1]
  --placement P      mixed: every room has members on every process (each publish crosses
                     processes); rooms: each room's members on one process, the rooms spread
                     over the processes [mixed]
  --gateway-env LIST extra environment for the wsgate processes, K=V comma-separated
                     (e.g. WSGATE_BUS_CHANNELS=single) [none]
  --store S          redis | redis-cluster | memory for wsgate [redis]; redis-cluster starts
                     a private cluster of 3 masters (no replicas) for wsgate
  --gateway-workers LIST
                     WSGATE_WORKERS of wsgate, or a comma-separated list (e.g. 1,2): wsgate runs
                     once per count, the first is the subject and the others are reported in a
                     scaling table; bare uWS runs as many processes on one port as the first [1]
  --drain-sec S      drain: WSGATE_DRAIN_SEC of the gateway [10]
  --tls              wsgate and bare uWS over TLS (wss://, a throw-away certificate, a full
                     handshake per connection), and wsgate in plain text as the baseline
                     wsgate-plain: wsgate / wsgate-plain is the cost of TLS
  --tls-key K        ec (P-256) | rsa (2048) key of that certificate [ec]
  --out DIR          where reports go [bench/results]
  --quiet            no progress output
  --help             this text
`;

export class UsageError extends Error {}

const BASELINES: readonly Baseline[] = ['uws', 'naive', 'socketio'];

/** The bench's options from its arguments; a typo, an unknown value or a bad number is a UsageError. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | 'help' {
  const str = { type: 'string' } as const;
  const flag = { type: 'boolean' } as const;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        conns: str, workers: str, duration: str, rate: str, concurrency: str, window: str, rooms: str, publishers: str, payload: str,
        saturate: flag, settle: str, warmup: str, revoked: str, encoding: str, 'reuse-tokens': flag, baseline: str, 'gateway-procs': str, 'gateway-workers': str, 'drain-sec': str, placement: str, 'gateway-env': str, store: str, tls: flag, 'tls-key': str, out: str, quiet: flag, help: flag,
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  const [scenario, ...extra] = positionals;
  if (!scenario || !(SCENARIOS as readonly string[]).includes(scenario)) throw new UsageError(scenario ? `unknown scenario "${scenario}"` : 'no scenario given');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const num = (k: keyof typeof v, d: number, o: { int?: boolean; min?: number; max?: number } = {}): number => {
    const raw = v[k];
    if (raw === undefined) return d;
    const n = Number(raw);
    if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < (o.min ?? 0) || n > (o.max ?? Infinity) || (o.int && !Number.isInteger(n))) {
      throw new UsageError(`--${k}: "${String(raw)}" is not ${o.int ? 'an integer' : 'a number'} >= ${o.min ?? 0}${o.max !== undefined ? ` and <= ${o.max}` : ''}`);
    }
    return n;
  };
  const oneOf = <T extends string>(k: keyof typeof v, allowed: readonly T[], d: T): T => {
    const raw = v[k];
    if (raw === undefined) return d;
    if (!(allowed as readonly unknown[]).includes(raw)) throw new UsageError(`--${k}: "${String(raw)}" is not one of ${allowed.join(', ')}`);
    return raw as T;
  };
  if (v.saturate && v.rate !== undefined) throw new UsageError('--saturate (closed loop) and --rate (paced) exclude each other');
  const names = (v.baseline ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  const bad = names.find((b) => b !== 'all' && !(BASELINES as readonly string[]).includes(b));
  if (bad) throw new UsageError(`--baseline: "${bad}" is not one of ${[...BASELINES, 'all'].join(', ')}`);
  const baselines = names.includes('all') ? (['naive', 'socketio'] as const) : BASELINES.filter((b) => b !== 'uws' && names.includes(b));
  if (v['tls-key'] !== undefined && !v.tls) throw new UsageError('--tls-key needs --tls');
  if (v.tls && baselines.length > 0) throw new UsageError('--tls compares wsgate over TLS with wsgate in plain text and bare uWS over TLS; the naive and Socket.IO baselines have no TLS');
  if (v.tls && scenario === 'http') throw new UsageError('--tls: the http scenario speaks plain HTTP only');
  const gatewayWorkers = (v['gateway-workers'] ?? '1').split(',').map((x) => x.trim());
  if (gatewayWorkers.some((x) => !/^[1-9][0-9]{0,3}$/.test(x))) throw new UsageError(`--gateway-workers: "${v['gateway-workers']}" is not a worker count or a comma-separated list of them (1..9999)`);
  const gatewayEnv: Record<string, string> = {};
  for (const pair of (v['gateway-env'] ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^(WSGATE_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (!m) throw new UsageError(`--gateway-env: "${pair}" is not WSGATE_NAME=value`);
    gatewayEnv[m[1]!] = m[2]!;
  }
  return {
    scenario: scenario as ScenarioName,
    conns: num('conns', 1000, { int: true, min: 1 }),
    workers: num('workers', 2, { int: true, min: 1 }),
    durationSec: num('duration', 10),
    rate: num('rate', 0),
    concurrency: num('concurrency', 256, { int: true, min: 1 }),
    window: num('window', 1, { int: true, min: 1 }),
    rooms: num('rooms', 10, { int: true, min: 1 }),
    publishers: num('publishers', 10, { int: true, min: 1 }),
    payloadBytes: num('payload', 64, { int: true }),
    saturate: v.saturate === true,
    settleSec: num('settle', 3),
    warmup: num('warmup', 0, { int: true }),
    revokedShare: num('revoked', 0.1, { max: 1 }),
    encoding: oneOf('encoding', ['json', 'msgpack'], 'json'),
    reuseTokens: v['reuse-tokens'] === true,
    baselines,
    gatewayProcs: num('gateway-procs', 1, { int: true, min: 1 }),
    gatewayWorkers: gatewayWorkers.map(Number),
    drainSec: num('drain-sec', 10, { int: true, max: 3600 }),
    store: oneOf('store', ['redis', 'redis-cluster', 'memory'], 'redis'),
    placement: oneOf('placement', ['mixed', 'rooms'], 'mixed'),
    gatewayEnv,
    tls: v.tls ? oneOf<'ec' | 'rsa'>('tls-key', ['ec', 'rsa'], 'ec') : undefined,
    outDir: resolve(v.out ?? 'bench/results'),
    quiet: v.quiet === true,
  };
}

const fmtRatio = (r: number | undefined): string => (r === undefined ? 'n/a' : r.toFixed(3));

/** What the CLI prints at the end: the headline ratios and the scenario's figures against each baseline. */
export function summaryLines(report: Report): string[] {
  const subject = report.runs.find((r) => r.role === 'subject')!;
  const L = [`${report.scenario}: wsgate ${subject.headline.metric} = ${subject.headline.value.toFixed(1)}`];
  for (const [t, r] of Object.entries(report.ratios)) L.push(`  wsgate / ${t} = ${r.headline === undefined ? 'n/a' : r.headline.toFixed(3)}`);
  for (const f of FIGURES[report.scenario] ?? []) {
    const value = subject.metrics[f.key];
    if (value === undefined) continue;
    const vs = Object.entries(report.ratios).flatMap(([t, r]) => {
      const x = r.figures[f.key];
      if (!x) return [];
      return [`/ ${t} = ${x.ratio === undefined ? 'n/a' : x.ratio.toFixed(3)}${x.differenceKB !== undefined ? ` (${x.differenceKB >= 0 ? '+' : ''}${x.differenceKB.toFixed(2)} KB)` : ''}`];
    });
    L.push(`  ${f.label}: wsgate ${value.toFixed(2)} ${f.unit}${vs.length ? '; ' + vs.join('; ') : ''}`);
  }
  if (report.tls) {
    const t = report.tls;
    const parts = [
      ...(t.upgradeCpuRatio !== undefined ? [`server CPU per upgrade ${fmtRatio(t.upgradeCpuRatio)} x plain${t.upgradeCpuExtraUs !== undefined ? ` (+${t.upgradeCpuExtraUs.toFixed(1)} µs)` : ''}`] : []),
      ...(t.lifecycleCpuRatio !== undefined ? [`per connection lifecycle ${fmtRatio(t.lifecycleCpuRatio)} x`] : []),
      `${report.runs.find((r) => r.role === 'subject')!.headline.metric} ${fmtRatio(t.headlineRatio)} x`,
    ];
    L.push(`  TLS (${t.key} key), wsgate over TLS / in plain text: ${parts.join(', ')}`);
  }
  L.push(`  headroom: ${report.headroom.note}`);
  return L;
}

let opts: BenchOptions | 'help';
try {
  opts = parseBenchArgs(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(`bench: ${e.message}\nThe options: npm run bench -- --help\n`);
  process.exit(2);
}
if (opts === 'help') {
  process.stdout.write(HELP);
  process.exit(0);
}
runBench(opts).then(
  ({ report, files }) => {
    for (const line of summaryLines(report)) process.stdout.write(line + '\n');
    for (const f of files) process.stdout.write(`  ${f}\n`);
  },
  (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
