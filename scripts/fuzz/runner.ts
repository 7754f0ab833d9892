// Runs fuzz cases against the gateway process over real sockets, `concurrency` at a time, and
// keeps the books: outcomes by family, failures with their seed, case index and bytes, and
// crashes. When the process dies, the cases in flight are its suspects; the run restarts the
// gateway and goes on (up to maxCrashes), then replays each crash's suspects one by one on a
// fresh gateway to find the case that kills it, and can shrink that case with fast-check.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { createSigner } from 'fast-jwt';
import { CaseMaker, FAMILIES, caseSeed, type Case, type CaseBody } from './cases.js';
import { openSock, type OpenSpec, type Sock } from './client.js';
import { GatewayProcess, crashSignature, type Exit, type GatewayOptions } from './gateway.js';
import { hex } from './msgpack.js';
import { runClaims, runFrame, runIsolation, runPermission, runTransport, type Ctx, type Verdict } from './oracles.js';

export interface FuzzOptions {
  readonly cases: number;
  readonly concurrency: number;
  readonly seed: number;
  /** the gateway's HS256 secret (the fuzzer signs its tokens with it) */
  readonly secret: string;
  /** extra gateway environment */
  readonly env?: Record<string, string>;
  /** the gateway's cli.js (default: dist/src/cli.js) */
  readonly cli?: string;
  readonly maxPayload?: number;
  readonly timeoutMs?: number;
  /** only these families (their proportions kept) */
  readonly families?: readonly string[];
  /** first case index (cases run from `first` to `first + cases - 1`) */
  readonly first?: number;
  /** stop after this many gateway crashes (default 20) */
  readonly maxCrashes?: number;
  /** replay each crash's suspects to find the culprit (default true) */
  readonly triage?: boolean;
  /** shrink each culprit with fast-check for at most this many ms (0: no shrinking) */
  readonly minimizeMs?: number;
  readonly onProgress?: (r: FuzzResult) => void;
  readonly log?: (line: string) => void;
}

export interface Failure {
  readonly family: string;
  readonly caseKind: string;
  readonly kind: string;
  readonly seed: number;
  readonly index: number;
  readonly detail: string;
  /** the frame (hex, truncated) or the scenario */
  readonly input: string;
}

export interface CrashReport {
  readonly signature: string;
  count: number;
  /** cases done when it first happened */
  readonly atCases: number;
  readonly exit: { code: number | null; signal: string | null };
  /** the last lines of the gateway's output (the stack) */
  readonly stack: string;
  /** cases in flight when it first happened */
  readonly suspects: number[];
  culprit?: { index: number; family: string; caseKind: string; input: string };
  minimized?: { input: string; shrinks: number };
  triage?: string;
}

export interface FuzzResult {
  seed: number;
  cases: number;
  elapsedMs: number;
  /** family -> outcome -> count */
  outcomes: Record<string, Record<string, number>>;
  /** case kind -> count */
  kinds: Record<string, number>;
  /** the first 200 failures */
  failures: Failure[];
  failureCount: number;
  /** family/kind -> count */
  failureKinds: Record<string, number>;
  warnings: Failure[];
  warningKinds: Record<string, number>;
  crashes: CrashReport[];
  /** "family/kind" of a failure or "crash: signature" -> the first case index that showed it */
  firstFound: Record<string, number>;
  restarts: number;
  healthChecks: number;
  healthFailures: string[];
  /** the gateway was alive at the end and answered /healthz */
  gatewayAlive: boolean;
  /** /healthz `connections` once every socket of the run was closed (0 expected) */
  connectionsAtEnd?: number;
  /** the exit of the last gateway after SIGTERM (0 expected) */
  finalExit?: { code: number | null; signal: string | null };
}

/** How a case is shown in a report: the frame's bytes, or the scenario as JSON. */
export function describeInput(body: CaseBody): string {
  if (body.type === 'frame') return `${body.binary ? 'binary' : 'text'} ${hex(body.bytes)}`;
  const s = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  return s.length > 600 ? `${s.slice(0, 600)}… (${s.length})` : s;
}

/** Runs one case on a gateway with the given pool of sockets. */
export async function execute(ctx: Ctx, body: CaseBody): Promise<Verdict> {
  switch (body.type) {
    case 'frame': return runFrame(ctx, body);
    case 'claims': return runClaims(ctx, body);
    case 'transport': return runTransport(ctx, body);
    case 'permission': return runPermission(ctx, body);
    case 'isolation': return runIsolation(ctx, body);
  }
}

/** An HS256 JWT of any claims (what fast-jwt's signer would write, without its claim checks). */
export function signHs256(secret: string, claims: Record<string, unknown>): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64url');
  const body = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

interface Pool {
  json?: Sock;
  msgpack?: Sock;
}

export class Fuzzer {
  private readonly maker: CaseMaker;
  private readonly sign: (c: Record<string, unknown>) => string;
  private readonly gopts: GatewayOptions;
  private readonly maxPayload: number;
  private readonly timeoutMs: number;
  private poolTokens = 0;

  constructor(private readonly opts: FuzzOptions) {
    this.maxPayload = opts.maxPayload ?? Number(opts.env?.WSGATE_MAX_PAYLOAD_BYTES ?? 65536);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maker = new CaseMaker({ maxPayload: this.maxPayload }, opts.families);
    const signer = createSigner({ key: opts.secret, algorithm: 'HS256', noTimestamp: true });
    // fast-jwt's signer refuses some claims (a negative or non-numeric exp); those are signed by hand
    this.sign = (c) => {
      try {
        return signer(c);
      } catch {
        return signHs256(opts.secret, c);
      }
    };
    this.gopts = { secret: opts.secret, ...(opts.cli ? { cli: opts.cli } : {}), env: { WSGATE_MAX_PAYLOAD_BYTES: String(this.maxPayload), ...(opts.env ?? {}) } };
  }

  make(index: number): Case {
    return this.maker.make(this.opts.seed, index);
  }

  private poolToken(): string {
    const n = ++this.poolTokens;
    return this.sign({ sub: `fz${n % 64}`, tenant_id: 'fuzz', jti: `fz-${this.opts.seed}-${n}-${Math.random()}`, exp: Math.floor(Date.now() / 1000) + 7200, permissions: ['*:**'] });
  }

  private ctx(gw: GatewayProcess, index: number, pool: Pool, opened: Sock[]): Ctx {
    return {
      url: gw.url,
      index,
      timeoutMs: this.timeoutMs,
      maxPayload: this.maxPayload,
      sign: this.sign,
      open: async (spec: Omit<OpenSpec, 'url'>) => {
        const o = await openSock({ ...spec, url: gw.url, timeoutMs: this.timeoutMs }, gw.gen);
        if (o.ok) opened.push(o.sock);
        return o;
      },
      pooled: async (encoding) => {
        const cur = pool[encoding];
        if (cur && cur.open && cur.gen === gw.gen) return cur;
        cur?.close();
        for (let i = 1; i <= 5; i++) {
          const o = await openSock({ url: gw.url, protocols: [encoding === 'json' ? 'wsgate.v1.json' : 'wsgate.v1.msgpack'], headers: { authorization: `Bearer ${this.poolToken()}` }, timeoutMs: this.timeoutMs }, gw.gen);
          if (o.ok) {
            o.sock.keepPushes = false;
            pool[encoding] = o.sock;
            return o.sock;
          }
          if (!gw.alive) return undefined;
          await new Promise((r) => setTimeout(r, 50 * i));
        }
        return undefined;
      },
      died: () => gw.diedWithin(700),
    };
  }

  /** Runs case `index` alone on `gw` (fresh sockets). */
  async runAlone(gw: GatewayProcess, index: number, body: CaseBody): Promise<Verdict> {
    const pool: Pool = {};
    const opened: Sock[] = [];
    try {
      return await execute(this.ctx(gw, index, pool, opened), body);
    } finally {
      pool.json?.close();
      pool.msgpack?.close();
      for (const s of opened) s.close();
    }
  }

  async run(): Promise<FuzzResult> {
    const o = this.opts;
    const log = o.log ?? (() => undefined);
    const r: FuzzResult = { seed: o.seed, cases: 0, elapsedMs: 0, outcomes: {}, kinds: {}, failures: [], failureCount: 0, failureKinds: {}, warnings: [], warningKinds: {}, crashes: [], firstFound: {}, restarts: 0, healthChecks: 0, healthFailures: [], gatewayAlive: false };
    const t0 = Date.now();
    const bump = (m: Record<string, number>, k: string): void => void (m[k] = (m[k] ?? 0) + 1);
    const found = (k: string, i: number): void => {
      if (r.firstFound[k] === undefined || i < r.firstFound[k]!) r.firstFound[k] = i;
    };
    const inflight = new Map<number, Case>();
    const recent: Array<{ index: number; at: number }> = [];
    const gateways: GatewayProcess[] = [];
    let gen = 0;
    let stopped = false;
    let crashCount = 0;
    const crashBy = new Map<string, CrashReport>();

    const watch = (gw: GatewayProcess): void => {
      gateways.push(gw);
      void gw.exited.then((exit) => {
        if (gw.stopping) return;
        crashCount++;
        const sig = crashSignature(exit.tail);
        let c = crashBy.get(sig);
        if (c) c.count++;
        else {
          // suspects: the cases in flight, and those that ended in the last 0.3 s (a frame that kills the
          // process can end its case, as a dropped socket, before the exit event arrives)
          const since = Date.now() - 300;
          const suspects = [...new Set([...[...inflight.keys()].sort((a, b) => b - a), ...recent.filter((x) => x.at >= since).map((x) => x.index).reverse()])];
          c = { signature: sig, count: 1, atCases: r.cases, exit: { code: exit.code, signal: exit.signal }, stack: exit.tail.split('\n').slice(-25).join('\n'), suspects };
          crashBy.set(sig, c);
          r.crashes.push(c);
          found(`crash: ${sig}`, Math.min(...suspects, Number.MAX_SAFE_INTEGER));
          log(`gateway crashed (${exit.code ?? exit.signal}) after ${r.cases} cases: ${sig}; suspects ${c.suspects.join(', ')}`);
        }
        if (crashCount >= (o.maxCrashes ?? 20)) {
          log(`stopping: ${crashCount} crashes`);
          stopped = true;
          return;
        }
        r.restarts++;
        ready = GatewayProcess.start(this.gopts, ++gen).then((g) => {
          watch(g);
          return g;
        });
      });
    };
    let ready: Promise<GatewayProcess> = GatewayProcess.start(this.gopts, ++gen).then((g) => {
      watch(g);
      return g;
    });
    await ready;

    const first = o.first ?? 0;
    let next = first;
    const end = first + o.cases;
    const worker = async (): Promise<void> => {
      const pool: Pool = {};
      while (!stopped && next < end) {
        const i = next++;
        const c = this.make(i);
        let gw: GatewayProcess;
        try {
          gw = await ready;
        } catch (e) {
          log(`gateway did not restart: ${(e as Error).message}`);
          stopped = true;
          break;
        }
        if (stopped) break;
        inflight.set(i, c);
        const opened: Sock[] = [];
        let v: Verdict;
        try {
          v = await execute(this.ctx(gw, i, pool, opened), c.body);
        } catch (e) {
          v = { outcome: 'fuzzer-error', failures: [{ kind: 'fuzzer-error', detail: (e as Error).stack ?? String(e) }], warnings: [], died: false };
        } finally {
          for (const s of opened) s.close();
        }
        inflight.delete(i);
        recent.push({ index: i, at: Date.now() });
        if (recent.length > 256) recent.splice(0, 128);
        r.cases++;
        const fam = (r.outcomes[c.family] ??= {});
        bump(fam, v.died ? 'gateway-died' : v.outcome);
        bump(r.kinds, c.body.kind);
        for (const f of v.failures) {
          r.failureCount++;
          bump(r.failureKinds, `${c.family}/${f.kind}`);
          found(`${c.family}/${f.kind}`, i);
          if (r.failures.length < 200) r.failures.push({ family: c.family, caseKind: c.body.kind, kind: f.kind, seed: o.seed, index: i, detail: f.detail, input: describeInput(c.body) });
        }
        for (const f of v.warnings) {
          bump(r.warningKinds, `${c.family}/${f.kind}`);
          if (r.warnings.length < 50) r.warnings.push({ family: c.family, caseKind: c.body.kind, kind: f.kind, seed: o.seed, index: i, detail: f.detail, input: describeInput(c.body) });
        }
        if (r.cases % 10_000 === 0) o.onProgress?.(r);
      }
      pool.json?.close();
      pool.msgpack?.close();
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    r.elapsedMs = Date.now() - t0;

    // the end: the last gateway must be alive, answer /healthz, and exit 0 on SIGTERM
    const last = await ready.catch(() => undefined);
    if (last && last.alive) {
      r.gatewayAlive = await last.checkHealth();
      // every socket of the run is closed: the gateway must hold none of them a moment later
      for (let i = 0; i < 60; i++) {
        r.connectionsAtEnd = await last.connections();
        if (r.connectionsAtEnd === 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const exit: Exit = await last.stop();
      r.finalExit = { code: exit.code, signal: exit.signal };
    }
    for (const g of gateways) {
      r.healthChecks += g.healthChecks;
      r.healthFailures.push(...g.healthFailures.slice(0, 10).map((h) => `gateway ${g.gen}: ${h}`));
    }
    if (o.triage ?? true) for (const c of r.crashes) await this.triage(c, log, o.minimizeMs ?? 0);
    // a crash is first found by its culprit (the suspects' smallest index was a placeholder)
    for (const c of r.crashes) if (c.culprit) r.firstFound[`crash: ${c.signature}`] = c.culprit.index;
    return r;
  }

  /** Replays a crash's suspects one at a time on a fresh gateway; the one that kills it is the culprit. */
  private async triage(c: CrashReport, log: (l: string) => void, minimizeMs: number): Promise<void> {
    let gw = await GatewayProcess.start({ ...this.gopts, healthEveryMs: 0 }, 1000);
    try {
      // in-flight cases first (newest first), then those that had just ended; at most 64 replays
      for (const i of c.suspects.slice(0, 64)) {
        const k = this.make(i);
        await this.runAlone(gw, i, k.body);
        if (!(await gw.diedWithin(200))) continue;
        const sig = crashSignature(gw.exit?.tail ?? '');
        log(`triage: case ${i} (${k.family}) alone ends the gateway: ${sig}`);
        if (sig === c.signature || !c.culprit) {
          c.culprit = { index: i, family: k.family, caseKind: k.body.kind, input: describeInput(k.body) };
          if (sig !== c.signature) c.triage = `alone it crashes with: ${sig}`;
        }
        gw = await GatewayProcess.start({ ...this.gopts, healthEveryMs: 0 }, 1001);
        if (sig === c.signature) break;
      }
      if (!c.culprit) c.triage = `no suspect alone ends the gateway (suspects: ${c.suspects.join(', ')})`;
    } finally {
      await gw.stop();
    }
    if (c.culprit && minimizeMs > 0) c.minimized = await this.minimize(c.culprit.index, c.signature, minimizeMs, log);
  }

  /**
   * Shrinks case `index` with fast-check while it still ends the gateway with the same signature:
   * the case's family arbitrary sampled with the case's seed yields the case itself, and
   * fast-check's shrinker proposes smaller ones. Each kill costs a restart (~0.2 s).
   */
  async minimize(index: number, signature: string, ms: number, log: (l: string) => void = () => undefined): Promise<{ input: string; shrinks: number } | undefined> {
    const k = this.make(index);
    const family = FAMILIES.find((f) => f.name === k.family)!;
    const arb = this.maker.arb(family);
    const deadline = Date.now() + ms;
    let gw = await GatewayProcess.start({ ...this.gopts, healthEveryMs: 0 }, 2000);
    const kills = async (body: CaseBody): Promise<boolean> => {
      if (Date.now() > deadline) return false;
      if (!gw.alive) gw = await GatewayProcess.start({ ...this.gopts, healthEveryMs: 0 }, 2000);
      await this.runAlone(gw, index, body);
      if (!(await gw.diedWithin(500))) return false;
      return crashSignature(gw.exit?.tail ?? '') === signature;
    };
    try {
      const out = await fc.check(fc.asyncProperty(arb, async (b) => !(await kills(b))), { seed: caseSeed(this.opts.seed, index), numRuns: 1 });
      const ce = out.counterexample?.[0];
      if (!ce) return undefined;
      log(`minimize: case ${index} shrunk ${out.numShrinks} times`);
      return { input: describeInput(ce), shrinks: out.numShrinks };
    } finally {
      await gw.stop();
    }
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  return new Fuzzer(opts).run();
}
