// Structure-aware fuzzing of the built gateway (dist/src/cli.js) over real sockets.
//
//   npm run fuzz -- [--cases 1000000] [--concurrency 32] [--seed S] [--families nesting,isolation]
//                   [--redis] [--max-crashes 20] [--minimize-ms 60000] [--json out.json]
//                   [--cli path/to/cli.js]   (another build of the gateway; default dist/src/cli.js)
//   npm run fuzz -- --seed S --replay I [--minimize-ms 60000]     one case, alone, on a fresh gateway
//
// Case families and their proportions: scripts/fuzz/cases.ts (FAMILIES), docs/SECURITY.md#fuzzing.
// Oracles: the gateway process stays alive and answers /healthz 200 throughout (polled), exits 0
// on SIGTERM at the end; every request frame gets exactly one reply or a documented close;
// tenants that differ in edge ways never see each other's publishes or presence; permissions
// never grant more than docs/PROTOCOL.md#permissions says (scripts/fuzz/oracles.ts).
// Each failure is printed with its seed, case index and input; `--replay` reruns it.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAMILIES } from './fuzz/cases.js';
import { GatewayProcess } from './fuzz/gateway.js';
import { Fuzzer, describeInput, type FuzzResult } from './fuzz/runner.js';

export { runFuzz, Fuzzer, type FuzzOptions, type FuzzResult, type Failure, type CrashReport } from './fuzz/runner.js';
export { FAMILIES } from './fuzz/cases.js';

const SECRET = 'fuzz-secret-0123456789-0123456789-0123456789';

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n');
}

/** A human summary: outcomes by family, failures by kind with their first case, crashes with their culprit. */
export function summary(r: FuzzResult, families?: readonly string[]): string {
  const out: string[] = [];
  const rate = r.elapsedMs > 0 ? ((r.cases * 1000) / r.elapsedMs).toFixed(0) : '-';
  out.push(`seed ${r.seed}: ${r.cases} cases in ${(r.elapsedMs / 1000).toFixed(1)} s (${rate}/s); ${r.restarts} restarts; /healthz polled ${r.healthChecks} times, ${r.healthFailures.length} not 200`);
  out.push('', 'outcomes by family:');
  for (const [fam, o] of Object.entries(r.outcomes).sort()) {
    const n = Object.values(o).reduce((a, b) => a + b, 0);
    const top = Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`  ${fam.padEnd(15)} ${String(n).padStart(8)}  ${top}`);
  }
  out.push('', 'cases by kind (encoding:family:target for frames):');
  const kinds = Object.entries(r.kinds).sort((a, b) => a[0].localeCompare(b[0]));
  for (let i = 0; i < kinds.length; i += 4) out.push(`  ${kinds.slice(i, i + 4).map(([k, v]) => `${k} ${v}`.padEnd(38)).join(' ')}`.trimEnd());
  if (r.failureCount > 0) {
    out.push('', `failures (${r.failureCount}) by family/kind, with the first case that showed it:`);
    out.push(table(Object.entries(r.failureKinds).sort().map(([k, v]) => [`  ${k}`, String(v), `first: case ${r.firstFound[k]}`])));
    const shown = new Set<string>();
    for (const f of r.failures) {
      const key = `${f.family}/${f.kind}`;
      if (shown.has(key)) continue;
      shown.add(key);
      out.push(`  - ${key}, seed ${f.seed} case ${f.index} (${f.caseKind}): ${f.detail}`, `      input: ${f.input}`, `      replay: npm run fuzz -- --seed ${f.seed} --replay ${f.index}${families ? ` --families ${families.join(',')}` : ''}`);
    }
  }
  for (const c of r.crashes) {
    out.push('', `CRASH x${c.count}: ${c.signature}${c.culprit ? ` (first found by case ${c.culprit.index})` : ''}`, `  exit ${c.exit.code ?? c.exit.signal} after ${c.atCases} cases; suspects ${c.suspects.join(', ')}`);
    if (c.culprit) out.push(`  culprit: seed ${r.seed} case ${c.culprit.index} (${c.culprit.family}, ${c.culprit.caseKind})`, `    input: ${c.culprit.input}`);
    if (c.triage) out.push(`  triage: ${c.triage}`);
    if (c.minimized) out.push(`  minimized (${c.minimized.shrinks} shrinks): ${c.minimized.input}`);
    out.push(c.stack.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{')).slice(0, 8).map((l) => `    | ${l}`).join('\n'));
  }
  const warn = Object.entries(r.warningKinds);
  if (warn.length > 0) out.push('', `warnings: ${warn.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const w of r.warnings.slice(0, 5)) out.push(`  - ${w.family}/${w.kind} case ${w.index}: ${w.detail}`);
  out.push('', `gateway at the end: ${r.gatewayAlive ? 'alive, /healthz 200' : 'DEAD or unhealthy'}${r.connectionsAtEnd !== undefined ? `, ${r.connectionsAtEnd} connections left` : ''}${r.finalExit ? `, exit on SIGTERM ${r.finalExit.code ?? r.finalExit.signal}` : ''}`);
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    strict: true,
    options: {
      cases: { type: 'string', default: '1000000' },
      concurrency: { type: 'string', default: '32' },
      seed: { type: 'string' },
      families: { type: 'string' },
      replay: { type: 'string' },
      redis: { type: 'boolean', default: false },
      'max-crashes': { type: 'string', default: '20' },
      'minimize-ms': { type: 'string', default: '0' },
      'timeout-ms': { type: 'string', default: '5000' },
      'max-payload': { type: 'string', default: '65536' },
      json: { type: 'string' },
      cli: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`npm run fuzz -- [--cases N] [--concurrency N] [--seed S] [--families a,b] [--redis] [--max-crashes N] [--minimize-ms MS] [--json FILE]\nnpm run fuzz -- --seed S --replay I [--families a,b] [--minimize-ms MS]\nfamilies (per 1000 cases):\n${FAMILIES.map((f) => `  ${f.name.padEnd(15)} ${String(f.weight).padStart(4)}  ${f.what}`).join('\n')}\n`);
    return;
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
  const families = values.families ? values.families.split(',') : undefined;
  let redis: { url: string; stop(): Promise<void> } | undefined;
  if (values.redis) {
    const { startRedisServer } = await import('../bench/lib/redis-server.js');
    redis = await startRedisServer();
  }
  const fuzzer = new Fuzzer({
    ...(values.cli ? { cli: values.cli } : {}),
    cases: Number(values.cases),
    concurrency: Number(values.concurrency),
    seed,
    secret: SECRET,
    env: { ...(redis ? { WSGATE_REDIS_URL: redis.url } : {}), WSGATE_MAX_PAYLOAD_BYTES: values['max-payload']! },
    ...(families ? { families } : {}),
    maxCrashes: Number(values['max-crashes']),
    minimizeMs: Number(values['minimize-ms']),
    timeoutMs: Number(values['timeout-ms']),
    log: (l) => process.stderr.write(`\nfuzz: ${l}\n`),
    onProgress: (r) => process.stderr.write(`\r${r.cases} cases, ${r.failureCount} failures, ${r.crashes.reduce((n, c) => n + c.count, 0)} crashes`),
  });
  try {
    if (values.replay !== undefined) {
      const index = Number(values.replay);
      const k = fuzzer.make(index);
      process.stdout.write(`case ${index} of seed ${seed}: family ${k.family}, ${k.body.kind}\ninput: ${describeInput(k.body)}\n`);
      const gw = await GatewayProcess.start({ secret: SECRET, ...(values.cli ? { cli: values.cli } : {}), env: { ...(redis ? { WSGATE_REDIS_URL: redis.url } : {}), WSGATE_MAX_PAYLOAD_BYTES: values['max-payload']! } }, 1);
      const v = await fuzzer.runAlone(gw, index, k.body);
      const died = await gw.diedWithin(700);
      process.stdout.write(`outcome: ${v.outcome}${died ? `; the gateway DIED (exit ${gw.exit?.code ?? gw.exit?.signal})` : ''}\n${v.failures.map((f) => `failure ${f.kind}: ${f.detail}`).join('\n')}\n`);
      if (died) process.stdout.write(`${gw.exit?.tail.split('\n').filter((l) => !l.startsWith('{')).slice(0, 10).join('\n')}\n`);
      else await gw.stop();
      if (died && Number(values['minimize-ms']) > 0) {
        const { crashSignature } = await import('./fuzz/gateway.js');
        const m = await fuzzer.minimize(index, crashSignature(gw.exit?.tail ?? ''), Number(values['minimize-ms']));
        if (m) process.stdout.write(`minimized (${m.shrinks} shrinks): ${m.input}\n`);
      }
      process.exitCode = died || v.failures.length > 0 ? 1 : 0;
      return;
    }
    process.stderr.write(`fuzz: ${values.cases} cases, ${values.concurrency} sockets, seed ${seed}${families ? `, families ${families.join(',')}` : ''}${redis ? ', Redis store' : ''}\n`);
    const r = await fuzzer.run();
    if (values.json) writeFileSync(values.json, JSON.stringify(r, null, 2));
    process.stdout.write(`\n${summary(r, families)}\n`);
    const crashed = r.crashes.length > 0;
    const failed = r.failureCount + r.crashes.reduce((n, c) => n + c.count, 0) + r.healthFailures.length + (r.gatewayAlive ? 0 : 1) + (r.finalExit?.code === 0 ? 0 : 1) + (r.connectionsAtEnd === 0 ? 0 : 1);
    process.stdout.write(`fuzz: ${r.cases - r.failureCount} passed, ${failed} failed${crashed ? ' (the gateway crashed)' : ''}\n`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    await redis?.stop();
  }
}

if (process.argv[1] && /fuzz\.(js|ts)$/.test(process.argv[1])) void main().catch((e: unknown) => {
  process.stderr.write(`fuzz: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(2);
});
