// Smoke runs of every bench scenario with tiny numbers, so they keep working. No timed
// assertions: only that each run completes, is correct where correctness is defined, and
// writes a report of the documented schema; the HTML report is opened in real headless Chromium.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from '../../bench/lib/report.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'wsgate-bench-'));
const reports = new Map<string, Report>();

async function bench(scenario: string, ...args: string[]): Promise<{ report: Report; dir: string; stdout: string }> {
  const { stdout } = await run(process.execPath, ['dist/bench/cli.js', scenario, '--conns', '60', '--workers', '2', '--duration', '1', '--rooms', '3', '--publishers', '2', '--rate', scenario === 'fanout' ? '200' : '0', '--out', out, '--quiet', ...args], { cwd: root, timeout: 120_000 });
  const dir = readdirSync(out).filter((d) => d.endsWith(`-${scenario}`)).sort().at(-1)!;
  const report = JSON.parse(readFileSync(join(out, dir, 'report.json'), 'utf8')) as Report;
  reports.set(scenario, report);
  return { report, dir: join(out, dir), stdout };
}

function checkSchema(r: Report, scenario: string, targets: string[]): void {
  expect(r.schema).toBe('wsgate-bench/1');
  expect(r.scenario).toBe(scenario);
  expect(r.environment.cores).toBeGreaterThan(0);
  expect(r.environment.node).toBe(process.version);
  expect(['upstream', 'compat']).toContain(r.environment.uws.uwsBuild);
  expect(r.runs.map((x) => x.target)).toEqual(targets);
  for (const run of r.runs) {
    expect(run.headline.value).toBeGreaterThan(0);
    expect(run.timeline.length).toBeGreaterThan(0);
    expect(run.generator.workers).toBe(2);
  }
  for (const t of targets.slice(1)) expect(r.ratios[t]!.headline).toBeGreaterThan(0);
  expect(r.headroom.note.length).toBeGreaterThan(0);
}

afterAll(() => undefined);

describe('bench scenarios (smoke)', () => {
  it('connect-storm against wsgate, bare uWS and Socket.IO: every upgrade accepted, ratios and headroom stated', async () => {
    const { report, dir, stdout } = await bench('connect-storm', '--baseline', 'socketio');
    checkSchema(report, 'connect-storm', ['wsgate', 'uws', 'socketio']);
    for (const r of report.runs) {
      expect(r.metrics.accepted).toBe(60);
      expect(r.latency.handshake!.count).toBe(60);
    }
    expect(report.headroom.ratio).toBeGreaterThan(0);
    expect(report.runs[0]!.metrics.redisRoundTripsPerUpgrade).toBeLessThan(1);
    expect(report.runs[2]!.metrics.redisRoundTripsPerUpgrade).toBeGreaterThanOrEqual(1); // the seed: one GET per upgrade
    expect(stdout).toMatch(/wsgate \/ socketio = \d/);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/\| wsgate \| .* \| 1\.00 \|/);
  });

  it('reconnect-storm hits the verifier cache', async () => {
    const { report } = await bench('reconnect-storm', '--store', 'memory');
    checkSchema(report, 'reconnect-storm', ['wsgate', 'uws']);
    expect(report.runs[0]!.metrics.verifierCacheHitRatio).toBe(1);
  });

  it('fanout delivers to every subscriber, msgpack included', async () => {
    const { report } = await bench('fanout', '--encoding', 'msgpack', '--baseline', 'socketio');
    checkSchema(report, 'fanout', ['wsgate', 'uws', 'socketio']);
    for (const r of report.runs) {
      expect(r.metrics.deliveries).toBeGreaterThan(0);
      // each publish reaches the 19 other members of its 20-member room
      expect(r.metrics.deliveries).toBe(r.metrics.publishes! * 19);
      expect(r.latency.delivery!.count).toBe(r.metrics.deliveries);
    }
  });

  it('echo, refresh-storm and hold', async () => {
    const echo = (await bench('echo', '--window', '4')).report;
    checkSchema(echo, 'echo', ['wsgate', 'uws']);
    expect(echo.runs[0]!.errors).toEqual({});
    const refresh = (await bench('refresh-storm')).report;
    checkSchema(refresh, 'refresh-storm', ['wsgate', 'uws']);
    expect(refresh.runs[0]!.metrics.refreshed).toBe(60);
    const hold = (await bench('hold')).report;
    checkSchema(hold, 'hold', ['wsgate', 'uws']);
    expect(hold.runs[0]!.metrics.held).toBe(60);
    expect(hold.capacity.connectionsPerGB).toBeGreaterThan(0);
  });

  it('revocation refuses exactly the revoked tokens and shares Redis round trips', async () => {
    const { report } = await bench('revocation', '--revoked', '0.25', '--baseline', 'socketio');
    checkSchema(report, 'revocation', ['wsgate', 'uws', 'socketio']);
    const [gw, , sio] = report.runs;
    expect(gw!.metrics.revoked).toBe(15);
    expect(gw!.metrics.correct).toBe(1);
    expect(sio!.metrics.correct).toBe(1);
    expect(gw!.metrics.redisRoundTripsPerUpgrade).toBeLessThan(sio!.metrics.redisRoundTripsPerUpgrade!);
  });

  it('http: autocannon against /healthz and refused upgrades', async () => {
    const { report } = await bench('http', '--concurrency', '10');
    checkSchema(report, 'http', ['wsgate', 'uws']);
    expect(report.runs[0]!.metrics['upgrade-no-token.reqPerSec']).toBeGreaterThan(0);
    expect(report.runs[0]!.metrics['upgrade-no-token.non2xx']).toBeGreaterThan(0);
  });

  it('bench:compare prints deltas and plan states nodes and the binding resource', async () => {
    const files = readdirSync(out).filter((d) => d.endsWith('-connect-storm')).map((d) => join(out, d, 'report.json'));
    const { stdout } = await run(process.execPath, ['dist/bench/compare.js', files[0]!, files[0]!], { cwd: root });
    expect(stdout).toMatch(/wsgate: upgrades\/s .* -> .* \(0\.0%\)/);
    const hold = readdirSync(out).filter((d) => d.endsWith('-hold')).map((d) => join(out, d, 'report.json'))[0]!;
    const plan = await run(process.execPath, ['dist/bench/plan.js', '--connections', '1000000', '--deliveries', '0', '--report', hold], { cwd: root });
    expect(plan.stdout).toMatch(/Nodes needed: \d+ \(binding resource: [A-Za-z]/);
  });
});

describe('HTML report', () => {
  it('renders its charts offline in headless Chromium', () => {
    const dir = readdirSync(out).filter((d) => d.endsWith('-fanout')).sort().at(-1)!;
    const file = join(out, dir, 'report.html');
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // nothing fetched
    const dom = execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${mkdtempSync(join(tmpdir(), 'chromium-'))}`, '--dump-dom', `file://${file}`], { timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const rendered = Number(/data-rendered="(\d+)"/.exec(dom)?.[1] ?? 0);
    expect(rendered).toBeGreaterThanOrEqual(6 * 3); // six charts, three targets each at least
    const paths = [...dom.matchAll(/<path d="M[^"]+" [^>]*data-points="(\d+)"/g)];
    expect(paths.length).toBe(rendered);
    expect(paths.every((p) => Number(p[1]) > 0)).toBe(true);
    expect(dom).toContain('Latency by percentile');
  });
});
