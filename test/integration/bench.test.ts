// Smoke runs of every bench scenario with tiny numbers against every target (wsgate, bare uWS,
// the naive gateway, Socket.IO), so they keep working. No timed assertions: only that each run
// completes, is correct where correctness is defined, reports the documented fields with
// positive values, and that a mistyped option is refused; the HTML report is opened in real
// headless Chromium.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { processTree, sampleProc, sampleTrees } from '../../bench/lib/procs.js';
import type { Report } from '../../bench/lib/report.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'wsgate-bench-'));
const ALL = ['wsgate', 'uws', 'naive', 'socketio'];

afterAll(() => rmSync(out, { recursive: true, force: true }));

// At most three runs at once: most of a run is waiting (idle and settle readings, durations,
// drains), but on a loaded 2-core machine more would time handshakes out.
const lanes = { free: 3, queue: [] as Array<() => void> };
async function lane<T>(fn: () => Promise<T>): Promise<T> {
  if (lanes.free > 0) lanes.free--;
  else await new Promise<void>((r) => lanes.queue.push(r));
  try {
    return await fn();
  } finally {
    const next = lanes.queue.shift();
    if (next) next();
    else lanes.free++;
  }
}

/** Runs one scenario into its own folder `<out>/<label>`. */
async function bench(label: string, scenario: string, ...args: string[]): Promise<{ report: Report; dir: string; file: string; stdout: string }> {
  const { stdout } = await lane(() => run(process.execPath, ['dist/bench/cli.js', scenario, '--conns', '60', '--workers', '2', '--duration', '1', '--rooms', '3', '--publishers', '2', ...(args.includes('--saturate') ? [] : ['--rate', scenario === 'fanout' ? '200' : '0']), '--out', join(out, label), '--quiet', ...args], { cwd: root, timeout: 120_000 }));
  const dir = join(out, label, readdirSync(join(out, label))[0]!);
  const file = join(dir, 'report.json');
  return { report: JSON.parse(readFileSync(file, 'utf8')) as Report, dir, file, stdout };
}
const reportOf = (label: string): string => join(out, label, readdirSync(join(out, label))[0]!, 'report.json');

/** Exit code and stderr of a bench command expected to fail. */
async function refused(script: string, ...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [script, ...args], { cwd: root, timeout: 10_000 });
  } catch (e) {
    return e as { code: number; stderr: string };
  }
  throw new Error(`${script} ${args.join(' ')} was accepted`);
}

function checkSchema(r: Report, scenario: string, targets: string[], gatewayProcs = 1): void {
  expect(r.schema).toBe('wsgate-bench/1');
  expect(r.scenario).toBe(scenario);
  expect(r.environment.cores).toBeGreaterThan(0);
  expect(r.environment.node).toBe(process.version);
  expect(['upstream', 'compat']).toContain(r.environment.uws.uwsBuild);
  expect(r.runs.map((x) => x.target)).toEqual(targets);
  for (const run of r.runs) {
    // hold's headline is an RSS difference over a few hundred connections here: a GC between the two
    // readings can make it negative (seen on the upstream build: -3.2 KB); elsewhere it is a rate
    if (scenario === 'hold') expect(Number.isFinite(run.headline.value)).toBe(true);
    else expect(run.headline.value).toBeGreaterThan(0);
    expect(run.timeline.length).toBeGreaterThan(0);
    expect(run.generator.workers).toBe(2);
    const procs = run.server.processes;
    expect(procs.length).toBe(run.target === 'wsgate' ? gatewayProcs : 1);
    for (const p of procs) {
      expect(p.pid).toBeGreaterThan(0);
      expect(p.rssMaxBytes).toBeGreaterThan(0);
      expect(p.treeProcs).toBeGreaterThanOrEqual(1);
    }
  }
  for (const t of targets.slice(1)) {
    expect(r.ratios[t]!.headline).toBeGreaterThan(0);
    expect(r.ratios[t]!.figures).toBeTypeOf('object');
  }
  expect(r.headroom.note.length).toBeGreaterThan(0);
}

/** A figure every target reports with a positive value, and its ratio against each baseline. */
function checkFigure(r: Report, key: string, baselines = r.runs.filter((x) => x.role === 'baseline').map((x) => x.target)): void {
  for (const run of r.runs) expect(run.metrics[key], `${run.target} ${key}`).toBeGreaterThan(0);
  for (const b of baselines) expect(r.ratios[b]!.figures[key]!.ratio, `wsgate / ${b} ${key}`).toBeGreaterThan(0);
}

describe('bench options', () => {
  it('a mistyped option or value is refused, not ignored', async () => {
    const typo = await refused('dist/bench/cli.js', 'connect-storm', '--conn', '60');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Unknown option '--conn'/);
    expect((await refused('dist/bench/cli.js', 'connect-storm', '--baseline', 'naiv')).stderr).toMatch(/--baseline: "naiv"/);
    expect((await refused('dist/bench/cli.js', 'connect-storm', '--conns', '6O')).stderr).toMatch(/--conns/);
    expect((await refused('dist/bench/cli.js', 'connect-strom')).stderr).toMatch(/unknown scenario/);
    expect((await refused('dist/bench/cli.js', 'fanout', '--placement', 'room')).stderr).toMatch(/--placement: "room"/);
    expect((await refused('dist/bench/cli.js', 'fanout', '--gateway-env', 'BUS=single')).stderr).toMatch(/--gateway-env: "BUS=single"/);
    expect((await refused('dist/bench/cli.js', 'fanout', '--store', 'cluster')).stderr).toMatch(/--store: "cluster"/);
    expect((await refused('dist/bench/compare.js', 'a.json', 'b.json', '--verbose')).code).toBe(2);
    expect((await refused('dist/bench/plan.js', '--conections', '10', '--report', 'r.json')).stderr).toMatch(/Unknown option/);
    expect((await refused('dist/bench/plan.js', '--connections', 'x', '--report', 'r.json')).stderr).toMatch(/--connections: "x"/);
    expect((await refused('dist/bench/cli.js', 'connect-storm', '--tls', '--baseline', 'naive')).stderr).toMatch(/have no TLS/);
    expect((await refused('dist/bench/cli.js', 'connect-storm', '--tls-key', 'rsa')).stderr).toMatch(/--tls-key needs --tls/);
    expect((await refused('dist/bench/cli.js', 'connect-storm', '--tls', '--tls-key', 'dsa')).stderr).toMatch(/--tls-key: "dsa"/);
    expect((await refused('dist/bench/cli.js', 'http', '--tls')).stderr).toMatch(/plain HTTP only/);
  });
});

describe.concurrent('bench scenarios (smoke)', { timeout: 150_000 }, () => {
  it('connect-storm against every target: every upgrade accepted, CPU per connection lifecycle, ratios and headroom stated', async () => {
    const { report, dir, stdout } = await bench('connect-storm', 'connect-storm', '--baseline', 'all', '--warmup', '20');
    checkSchema(report, 'connect-storm', ALL);
    expect(report.options.warmup).toBe(20);
    for (const r of report.runs) {
      expect(r.metrics.accepted, `${r.target} ${JSON.stringify(r.errors)}`).toBe(60);
      expect(r.latency.handshake!.count).toBe(60);
      expect(r.metrics.cpuUsPerConnUpgrade).toBeGreaterThan(0);
    }
    checkFigure(report, 'cpuUsPerConn');
    expect(report.headroom.ratio).toBeGreaterThan(0);
    const [gw, , naive, sio] = report.runs;
    expect(gw!.metrics.redisRoundTripsPerUpgrade).toBeLessThan(1);
    expect(naive!.metrics.redisRoundTripsPerUpgrade).toBeGreaterThanOrEqual(1); // one GET per upgrade
    expect(sio!.metrics.redisRoundTripsPerUpgrade).toBeGreaterThanOrEqual(1); // the seed: one GET per upgrade
    // reported for the targets that use Redis; over 60 upgrades (60 GETs, well under a millisecond of
    // Redis CPU) the figure can fall inside the correction for Redis's own idle CPU and read 0 (it is
    // clamped there: a fresh-check run saw 0), so only its presence and sign are checked here
    expect(naive!.metrics.redisCpuUsPerConn).toBeTypeOf('number');
    expect(naive!.metrics.redisCpuUsPerConn).toBeGreaterThanOrEqual(0);
    expect(stdout).toMatch(/wsgate \/ naive = \d/);
    expect(stdout).toMatch(/server CPU per connection \(upgrade\+open\+close\): wsgate [\d.]+ µs; \/ uws = [\d.]+; \/ naive = [\d.]+/);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toMatch(/\| wsgate \| .* \| 1\.00 \|/);
    expect(md).toMatch(/\| naive \| .* \| [\d.]+ \|/);
    expect(md).toMatch(/## Key figures[\s\S]*\| figure \| wsgate \| uws \| naive \| socketio \| wsgate \/ uws \| wsgate \/ naive \|/);
  });

  it('connect-storm --tls: wsgate and bare uWS over TLS, wsgate in plain text as the baseline; the TLS cost as ratios', async () => {
    const { report, stdout } = await bench('tls', 'connect-storm', '--tls', '--store', 'memory');
    checkSchema(report, 'connect-storm', ['wsgate', 'wsgate-plain', 'uws']);
    expect(report.runs.map((r) => r.info.tls)).toEqual([true, false, true]);
    for (const r of report.runs) expect(r.metrics.accepted, `${r.target} ${JSON.stringify(r.errors)}`).toBe(60);
    checkFigure(report, 'cpuUsPerConnUpgrade');
    expect(report.tls).toMatchObject({ key: 'ec' });
    expect(report.tls!.upgradeCpuRatio).toBeGreaterThan(0);
    expect(report.tls!.lifecycleCpuRatio).toBeGreaterThan(0);
    expect(report.tls!.headlineRatio).toBe(report.ratios['wsgate-plain']!.headline);
    expect(report.tls!.upgradeCpuExtraUs).toBe(report.runs[0]!.metrics.cpuUsPerConnUpgrade! - report.runs[1]!.metrics.cpuUsPerConnUpgrade!);
    expect(stdout).toMatch(/TLS \(ec key\), wsgate over TLS \/ in plain text: server CPU per upgrade [\d.]+ x plain/);
  });

  it('reconnect-storm hits the verifier cache; CPU per connection against every target', async () => {
    const { report } = await bench('reconnect-storm', 'reconnect-storm', '--store', 'memory', '--baseline', 'all');
    checkSchema(report, 'reconnect-storm', ALL);
    expect(report.runs[0]!.metrics.verifierCacheHitRatio).toBe(1);
    checkFigure(report, 'cpuUsPerConn');
  });

  it('fanout delivers to every subscriber on every target, msgpack included; p99 and CPU per delivery compared', async () => {
    const { report } = await bench('fanout', 'fanout', '--encoding', 'msgpack', '--baseline', 'all');
    checkSchema(report, 'fanout', ALL);
    for (const r of report.runs) {
      // each publish reaches the 19 other members of its 20-member room. The naive baseline upgrades
      // asynchronously (a Redis GET), so on the upstream build uWebSockets #1928 closes about one
      // socket in 2,500 right after its open (docs/UWS-1928.md): a room then has a member fewer.
      const expected = r.metrics.publishes! * 19;
      if (r.target === 'naive' && report.environment.uws.uwsBuild === 'upstream') {
        expect(r.metrics.deliveries, r.target).toBeLessThanOrEqual(expected);
        expect(r.metrics.deliveries, r.target).toBeGreaterThanOrEqual(expected * 0.9);
      } else expect(r.metrics.deliveries, r.target).toBe(expected);
      expect(r.latency.delivery!.count).toBe(r.metrics.deliveries);
      expect(r.metrics.closedLoop).toBe(0);
    }
    for (const key of ['deliveriesPerSec', 'deliveryP99Ms', 'cpuUsPerDelivery']) checkFigure(report, key);
    expect(report.runs[0]!.metrics.redisCpuUsPerDelivery).toBeGreaterThan(0); // its bus
    expect(report.runs[2]!.metrics.redisCpuUsPerDelivery).toBeUndefined(); // naive fans out locally
  });

  it('fanout at saturation on two wsgate processes: rooms span both, so every delivery crosses Redis or stays local as it should', async () => {
    const { report } = await bench('fanout-procs', 'fanout', '--saturate', '--window', '2', '--gateway-procs', '2');
    checkSchema(report, 'fanout', ['wsgate', 'uws'], 2);
    const [gw, uws] = report.runs;
    for (const r of [gw!, uws!]) {
      expect(r.metrics.closedLoop).toBe(1);
      expect(r.metrics.deliveries, r.target).toBe(r.metrics.publishes! * 19);
    }
    const procs = gw!.server.processes;
    expect(new Set(procs.map((p) => p.port)).size).toBe(2);
    expect(procs.map((p) => p.nodeId)).toEqual(['bench-wsgate-0', 'bench-wsgate-1']);
    for (const p of procs) expect(p.cpuByPhase.fanout).toBeGreaterThan(0); // both processes deliver
    expect(procs[0]!.cpuAvg + procs[1]!.cpuAvg).toBeCloseTo(gw!.server.cpuAvg, 1);
    expect(gw!.metrics.redisCpuUsPerDelivery).toBeGreaterThan(0);
    checkFigure(report, 'deliveriesPerSec');
  });

  it('fanout on two wsgate processes on a Redis Cluster, each room on one process: every delivery stays on its node', async () => {
    const { report } = await bench('fanout-cluster', 'fanout', '--gateway-procs', '2', '--placement', 'rooms', '--store', 'redis-cluster', '--gateway-env', 'WSGATE_BUS_CHANNELS=room');
    checkSchema(report, 'fanout', ['wsgate', 'uws'], 2);
    expect([report.options.store, report.options.placement, report.options.gatewayEnv]).toEqual(['redis-cluster', 'rooms', { WSGATE_BUS_CHANNELS: 'room' }]);
    const gw = report.runs[0]!;
    expect(gw.metrics.deliveries).toBe(gw.metrics.publishes! * 19);
    for (const p of gw.server.processes) expect(p.cpuByPhase.fanout).toBeGreaterThan(0); // both processes deliver their rooms
    expect(gw.metrics.redisCpuUsPerDelivery).toBeGreaterThan(0); // the cluster's CPU, summed over its masters
  });

  it('echo against every target', async () => {
    const echo = (await bench('echo', 'echo', '--window', '4', '--baseline', 'all')).report;
    checkSchema(echo, 'echo', ALL);
    for (const r of echo.runs) expect(r.errors).toEqual({});
  });

  it('refresh-storm against every target', async () => {
    const refresh = (await bench('refresh-storm', 'refresh-storm', '--baseline', 'all')).report;
    checkSchema(refresh, 'refresh-storm', ALL);
    for (const r of refresh.runs) expect(r.metrics.refreshed, `${r.target} ${JSON.stringify(r.errors)}`).toBe(60);
  });

  it('hold against every target: RSS settled and at the end, the heap from wsgate /metrics', async () => {
    const hold = (await bench('hold', 'hold', '--conns', '1000', '--settle', '0.5', '--baseline', 'all')).report;
    checkSchema(hold, 'hold', ALL);
    for (const r of hold.runs) {
      expect(r.metrics.held, `${r.target} ${JSON.stringify(r.errors)}`).toBe(1000);
      expect(r.metrics.rssSettledBytes).toBeGreaterThan(r.metrics.rssBaseBytes!);
    }
    checkFigure(hold, 'rssPerConnSettledBytes');
    expect(hold.ratios.uws!.figures.rssPerConnSettledBytes!.differenceKB).toBeTypeOf('number');
    expect(hold.runs[0]!.metrics.heapUsedSettledBytes).toBeGreaterThan(0);
    expect(hold.runs[1]!.metrics.heapUsedSettledBytes).toBeUndefined(); // from wsgate's /metrics only
    expect(hold.capacity.connectionsPerGB).toBeGreaterThan(0);
    // One publish per room reached every other member of it. The naive baseline upgrades after an
    // await in res.cork: on the upstream build uWebSockets #1928 may close a socket right after its
    // connected frame (docs/UWS-1928.md), and that member then misses its delivery.
    for (const r of hold.runs) {
      expect(r.metrics.deliveriesExpected, r.target).toBe(997);
      if (r.target !== 'naive') expect([r.target, r.metrics.deliveriesReceived, r.metrics.deliveredAll]).toEqual([r.target, 997, 1]);
      else expect(r.metrics.deliveriesReceived).toBeGreaterThan(990);
    }
  });

  it('hold on two wsgate workers next to bare uWS on two processes sharing one port: every member receives (rooms span the workers); each process reported', async () => {
    const { report, dir } = await bench('hold-workers', 'hold', '--conns', '300', '--settle', '0.5', '--gateway-workers', '2');
    const [gw, uws] = report.runs;
    expect(report.runs.map((r) => [r.target, r.role, r.workers])).toEqual([['wsgate', 'subject', 2], ['uws', 'baseline', 2]]);
    expect(gw!.metrics.held).toBe(300);
    expect(gw!.metrics.deliveredAll).toBe(1);
    expect(uws!.metrics.held).toBe(300);
    expect(uws!.metrics.deliveredAll).toBeUndefined(); // two bare uWS processes share no rooms: memory only
    expect(gw!.server.processes).toHaveLength(1);
    expect(gw!.server.processes[0]!.treeProcs).toBe(3); // the supervisor and its two workers
    expect(gw!.server.perProcess!.map((p) => p.root).sort()).toEqual([false, false, true]);
    expect(uws!.server.processes).toHaveLength(2);
    expect(new Set(uws!.server.processes.map((p) => p.port)).size).toBe(1);
    expect(report.capacity.workerBaseRssBytes).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/\| wsgate \(2 workers\) \| -?[0-9.]+k? bytes \| 1\.00 \|/); // 300 connections: RSS noise may exceed their memory
  });

  it('connect-storm on 1 and 2 workers: a scaling table with each worker\'s CPU; the per-core capacity comes from the 2-worker run', async () => {
    const { report, dir } = await bench('storm-workers', 'connect-storm', '--store', 'memory', '--gateway-workers', '1,2');
    expect(report.runs.map((r) => [r.target, r.role, r.workers])).toEqual([['wsgate', 'subject', 1], ['wsgate', 'scaling', 2], ['uws', 'baseline', 1]]);
    for (const r of report.runs) expect(r.metrics.accepted, `${r.target} ${JSON.stringify(r.errors)}`).toBe(60);
    const [one, two] = report.scaling!;
    expect([one!.workers, two!.workers]).toEqual([1, 2]);
    expect(one!.ratioToFirst).toBe(1);
    expect(two!.ratioToFirst).toBeGreaterThan(0);
    expect(two!.workerCpu).toHaveLength(2);
    for (const c of two!.workerCpu) expect(c).toBeGreaterThan(0); // both workers took upgrades
    expect(report.capacity.perCoreFromWorkers).toBe(2);
    expect(report.capacity.upgradesPerSecPerCore).toBe(two!.perCore);
    expect(Object.keys(report.ratios)).toEqual(['uws']); // the scaling run is no baseline
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/## Scaling with workers[\s\S]*The generator runs on the same \d+ cores/);
  });

  it('drain: a rolling restart under clients that reconnect with backoff; every connection closed with 4500 comes back', async () => {
    // --duration: the longest it watches; it ends when both workers were replaced and the last drained
    const { report } = await bench('drain', 'drain', '--store', 'memory', '--gateway-workers', '2', '--drain-sec', '1', '--duration', '60');
    expect(report.runs.map((r) => r.target)).toEqual(['wsgate']);
    const m = report.runs[0]!.metrics;
    expect(m.connected).toBe(60);
    expect(m.closed).toBeGreaterThanOrEqual(60); // every connection was on a worker that drained
    expect(m.closed4500).toBe(m.closed);
    expect(m.reconnected).toBe(m.closed);
    expect(m.allBack).toBe(1);
    expect(report.runs[0]!.series!.closed!.reduce((a, b) => a + b, 0)).toBe(m.closed);
  });

  it('revocation refuses exactly the revoked tokens; wsgate shares Redis round trips, the naive gateway and the seed do not', async () => {
    const { report } = await bench('revocation', 'revocation', '--revoked', '0.25', '--baseline', 'all');
    checkSchema(report, 'revocation', ALL);
    const [gw, , naive, sio] = report.runs;
    expect(gw!.metrics.revoked).toBe(15);
    for (const r of [gw!, naive!, sio!]) expect(r.metrics.correct).toBe(1);
    expect(gw!.metrics.redisRoundTripsPerUpgrade).toBeLessThan(naive!.metrics.redisRoundTripsPerUpgrade!);
    expect(gw!.metrics.redisRoundTripsPerUpgrade).toBeLessThan(sio!.metrics.redisRoundTripsPerUpgrade!);
  });

  it('http: autocannon against /healthz, refused upgrades, and the server API next to bare uWS serving the same JSON', async () => {
    const { report } = await bench('http', 'http', '--concurrency', '10', '--duration', '0.5', '--baseline', 'all');
    checkSchema(report, 'http', ALL);
    for (const r of [report.runs[0]!, report.runs[2]!]) {
      expect(r.metrics['upgrade-no-token.reqPerSec']).toBeGreaterThan(0);
      expect(r.metrics['upgrade-no-token.non2xx']).toBeGreaterThan(0);
    }
    const [gw, uws] = report.runs;
    for (const name of ['admin-counts', 'admin-presence']) {
      for (const r of [gw!, uws!]) {
        expect(r.metrics[`${name}.reqPerSec`], `${r.target} ${name}`).toBeGreaterThan(0);
        expect([r.metrics[`${name}.non2xx`], r.metrics[`${name}.errors`]], `${r.target} ${name}`).toEqual([0, 0]); // every answer a 200: the key was taken
        expect(r.latency[name]!.p99).toBeGreaterThanOrEqual(r.latency[name]!.p50);
      }
      expect(report.ratios.uws!.figures[`${name}.reqPerSec`]!.ratio).toBeGreaterThan(0);
      expect(report.runs[2]!.metrics[`${name}.reqPerSec`]).toBeUndefined(); // the naive baseline has no such API
    }
  });
});

describe('reports of the smoke runs', () => {
  it('bench:compare prints deltas and plan states nodes and the binding resource', async () => {
    const storm = reportOf('connect-storm');
    const { stdout } = await run(process.execPath, ['dist/bench/compare.js', storm, storm], { cwd: root });
    expect(stdout).toMatch(/wsgate: upgrades\/s .* -> .* \(0\.0%\)/);
    expect(stdout).toMatch(/ratio wsgate\/naive: [\d.]+ -> [\d.]+/);
    const hold = reportOf('hold');
    const plan = await run(process.execPath, ['dist/bench/plan.js', '--connections', '1000000', '--deliveries', '0', '--report', hold], { cwd: root });
    expect(plan.stdout).toMatch(/Nodes needed: \d+ \(binding resource: [A-Za-z]/);
    // per-core CPU from the 2-worker run, each worker's memory, and the descriptor limit per worker
    const workers = await run(process.execPath, ['dist/bench/plan.js', '--connections', '100000', '--deliveries', '0', '--upgrades', '100', '--fd-limit', '20000', '--cores', '2', '--workers', '2', '--report', reportOf('storm-workers'), '--report', reportOf('hold-workers')], { cwd: root });
    expect(workers.stdout).toMatch(/CPU figures: per core, from the run on 2 workers/);
    expect(workers.stdout).toMatch(/Each worker's own memory: \d+ MB/);
    expect(workers.stdout).toMatch(/descriptors \(2 workers x 20000\)\s+per node\s+34488\s+-> 3 nodes/);
  });
});

describe('process-tree sampling', () => {
  it('counts a supervisor and its busy children, which the root alone does not', async () => {
    const busy = `const e = Date.now() + 3000; while (Date.now() < e);`;
    const sup = spawn(process.execPath, ['-e', `const { spawn } = require('node:child_process'); for (let i = 0; i < 2; i++) spawn(process.execPath, ['-e', ${JSON.stringify(busy)}], { stdio: 'ignore' }); setTimeout(() => {}, 3500);`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const pids = processTree(sup.pid!);
      expect(pids.length).toBe(3);
      const [tree] = sampleTrees([sup.pid!]);
      const alone = sampleProc(sup.pid!)!;
      const children = pids.slice(1).reduce((sum, pid) => sum + sampleProc(pid)!.cpuMs, 0);
      expect(tree!.procs).toBe(3);
      expect(tree!.rssBytes).toBeGreaterThan(alone.rssBytes * 2);
      // the tree is the root plus its children (sampled a few ms apart, while two children spin)
      expect(Math.abs(tree!.cpuMs - alone.cpuMs - children)).toBeLessThan(60);
      // two children spinning for 1.5 s, even on a loaded 2-core machine, against an idle root
      expect(children).toBeGreaterThan(100);
      expect(children).toBeGreaterThan(alone.cpuMs);
    } finally {
      sup.kill('SIGKILL');
    }
  });
});

describe('HTML report', () => {
  it('renders its charts offline in headless Chromium', () => {
    const file = reportOf('fanout').replace(/json$/, 'html'); // the four-target run
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // nothing fetched
    expect(html).toContain('wsgate / naive');
    const dom = execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${mkdtempSync(join(out, 'chromium-'))}`, '--dump-dom', `file://${file}`], { timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const rendered = Number(/data-rendered="(\d+)"/.exec(dom)?.[1] ?? 0);
    expect(rendered).toBeGreaterThanOrEqual(6 * 4); // six charts, four targets each at least
    const paths = [...dom.matchAll(/<path d="M[^"]+" [^>]*data-points="(\d+)"/g)];
    expect(paths.length).toBe(rendered);
    expect(paths.every((p) => Number(p[1]) > 0)).toBe(true);
    expect(dom).toContain('Latency by percentile');
  });
});
