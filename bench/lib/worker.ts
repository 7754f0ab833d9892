// A load-generator worker process (forked by bench/lib/generator.ts). Raw TCP sockets, prebuilt
// upgrade requests and frames, minimal parsing: it must never be the bottleneck. It runs the
// phases its parent asks for and answers each with counters and HdrHistograms (microseconds).
//
// Latency is measured from the *scheduled* send time in open-loop mode (rate > 0), as wrk2 does,
// so a stalled server cannot hide its queueing delay (coordinated omission).
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { createSigner } from 'fast-jwt';
import * as hdr from 'hdr-histogram-js';
import { dialectFor, type Dialect, type Target } from './dialects.js';
import { contentLength, FrameParser, OP_CLOSE, OP_PING, OP_PONG, frame, parseHead, upgradeRequest } from './wire.js';

export interface WorkerSpec {
  readonly index: number;
  readonly target: Target;
  readonly encoding: 'json' | 'msgpack';
  readonly host: string;
  readonly port: number;
  /** global index of this worker's first connection, and how many it owns */
  readonly first: number;
  readonly conns: number;
  /** spread connections over 127.0.0.1 .. 127.0.0.N (~28k ephemeral ports per address pair) */
  readonly addrs: number;
  readonly secret: string;
  readonly tokenTtlSec: number;
  readonly tenant: string;
  readonly rooms: number;
  readonly jtiPrefix: string;
  /** mint 100 tokens and share them (verifier-cache hits) instead of one per connection */
  readonly reuseTokens: boolean;
}

export type Command =
  | { cmd: 'connect'; rate: number; concurrency: number; timeoutMs: number }
  | { cmd: 'join' }
  | { cmd: 'echo'; durationMs: number; rate: number; window: number }
  | { cmd: 'fanout'; durationMs: number; publishers: number; rate: number; payloadBytes: number }
  | { cmd: 'refresh'; timeoutMs: number }
  | { cmd: 'hold'; durationMs: number }
  | { cmd: 'close' };

export interface PhaseStats {
  ok: number;
  errors: Record<string, number>;
  /** base64 HdrHistogram of the phase's latency (µs): handshake, round trip or refresh */
  hist: string;
  deliveries: number;
  /** base64 HdrHistogram of delivery latency (µs), fanout only */
  deliveryHist: string;
  elapsedMs: number;
  /** from the phase start to its last successful operation */
  activeMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export interface Progress {
  ev: 'progress';
  open: number;
  ok: number;
  deliveries: number;
  errors: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const newHist = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

interface Conn {
  readonly idx: number;
  token: string;
  sock: Socket | undefined;
  state: 'idle' | 'http' | 'ws' | 'ready' | 'closed';
  head: Buffer;
  parser: FrameParser;
  nextId: number;
  /** request id -> scheduled (or actual) send time */
  pending: Map<number, number>;
  scheduledAt: number;
}

let spec: WorkerSpec;
let dialect: Dialect;
let conns: Conn[] = [];
let refreshTokens: string[] = [];

// Per-phase accumulators.
let hist = newHist();
let deliveryHist = newHist();
let ok = 0;
let deliveries = 0;
let errors: Record<string, number> = {};
let onReady: ((c: Conn) => void) | undefined;
let onReply: ((c: Conn, ref: number, good: boolean, code: string | undefined) => void) | undefined;
let onClosed: ((c: Conn, was: Conn['state']) => void) | undefined;
/** time of the phase's last successful operation: rates end there, not at a straggler's timeout */
let lastOkAt = 0;
let progressTimer: NodeJS.Timeout | undefined;

const err = (reason: string): void => {
  errors[reason] = (errors[reason] ?? 0) + 1;
};

function mintTokens(): void {
  const sign = createSigner({ key: spec.secret, algorithm: 'HS256', expiresIn: spec.tokenTtlSec * 1000 });
  const perms = ['*:**'];
  conns = [];
  const shared = spec.reuseTokens ? Array.from({ length: 100 }, (_, k) => sign({ sub: `user${k}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}shared${k}`, permissions: perms })) : [];
  for (let i = 0; i < spec.conns; i++) {
    const idx = spec.first + i;
    const token = spec.reuseTokens ? shared[idx % 100]! : sign({ sub: `user${idx}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}${idx}`, permissions: perms });
    conns.push({ idx, token, sock: undefined, state: 'idle', head: Buffer.alloc(0), parser: undefined as unknown as FrameParser, nextId: 1, pending: new Map(), scheduledAt: 0 });
  }
  // Fresh tokens for token:refresh, minted before any clock starts.
  refreshTokens = conns.map((c) => sign({ sub: `user${c.idx}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}${c.idx}-r-${randomUUID()}`, permissions: perms }));
}

function onFrame(c: Conn, opcode: number, payload: Buffer): void {
  if (opcode === OP_PING) {
    c.sock?.write(frame(OP_PONG, Buffer.from(payload)));
    return;
  }
  if (opcode === OP_CLOSE) {
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    if (c.state !== 'ready') err(`closed ${code} ${payload.subarray(2).toString()}`.trim());
    c.sock?.end();
    return;
  }
  const e = dialect.read(opcode, payload, c.token);
  switch (e.kind) {
    case 'ready':
      if (c.state === 'ws') {
        c.state = 'ready';
        onReady?.(c);
      }
      return;
    case 'refused':
      err(`refused ${e.reason}`);
      c.state = 'closed';
      c.sock?.destroy();
      return;
    case 'send':
      c.sock?.write(e.frame);
      return;
    case 'reply':
      onReply?.(c, e.ref, e.ok, e.code);
      return;
    case 'message':
      deliveries++;
      if (e.t > 0) deliveryHist.recordValue(Math.max(1, Math.round((now() - e.t) * 1000)));
      return;
    default:
      return;
  }
}

function open(c: Conn, scheduledAt: number): void {
  c.scheduledAt = scheduledAt;
  c.state = 'http';
  c.head = Buffer.alloc(0);
  c.pending.clear();
  c.parser = new FrameParser((op, p) => onFrame(c, op, p));
  // The address pair is spread over the *destination* side (the servers listen on every loopback
  // address): binding a source address first (localAddress) makes Linux search the whole port
  // range on every bind once ports run short (Node cannot set IP_BIND_ADDRESS_NO_PORT), which
  // turned a 20k-connection storm into minutes; connect() picks ports per destination instead.
  const host = spec.addrs > 1 ? `127.0.0.${1 + (c.idx % spec.addrs)}` : spec.host;
  const sock = tcpConnect({ host, port: spec.port });
  c.sock = sock;
  sock.setNoDelay(true);
  const req = upgradeRequest(`${host}:${spec.port}`, dialect.path, dialect.headers(c.token));
  sock.on('connect', () => sock.write(req));
  sock.on('data', (chunk: Buffer) => {
    if (c.state === 'ws' || c.state === 'ready') return c.parser.push(chunk);
    if (c.state !== 'http') return;
    c.head = c.head.length ? Buffer.concat([c.head, chunk]) : chunk;
    const head = parseHead(c.head);
    if (!head) return;
    if (head.status === 101) {
      c.state = 'ws';
      if (head.rest.length) c.parser.push(Buffer.from(head.rest));
      return;
    }
    const len = contentLength(head.headers);
    if (head.rest.length < len) return;
    const m = /"code":"([A-Z_]+)"/.exec(head.rest.toString());
    err(`refused ${head.status}${m ? ' ' + m[1] : ''}`);
    c.state = 'closed';
    sock.destroy();
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    if (c.state !== 'closed') err(`socket ${e.code ?? e.message}`);
  });
  sock.on('close', () => {
    const was = c.state;
    c.state = 'closed';
    c.sock = undefined;
    onClosed?.(c, was);
  });
}

function resetPhase(): void {
  hist = newHist();
  deliveryHist = newHist();
  ok = 0;
  deliveries = 0;
  errors = {};
  lastOkAt = 0;
  onReady = onReply = onClosed = undefined;
}

function startProgress(): void {
  progressTimer = setInterval(() => {
    const msg: Progress = { ev: 'progress', open: conns.reduce((n, c) => n + (c.state === 'ready' ? 1 : 0), 0), ok, deliveries, errors: Object.values(errors).reduce((a, b) => a + b, 0) };
    process.send!(msg);
  }, 500);
}

async function phase(fn: () => Promise<void>): Promise<PhaseStats> {
  resetPhase();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  startProgress();
  try {
    await fn();
  } finally {
    clearInterval(progressTimer);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    ok,
    errors,
    hist: hdr.encodeIntoCompressedBase64(hist),
    deliveries,
    deliveryHist: hdr.encodeIntoCompressedBase64(deliveryHist),
    elapsedMs: now() - t0,
    activeMs: lastOkAt > 0 ? lastOkAt - t0 : now() - t0,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Open-loop pacing: calls `send(k, scheduledAt)` for every k due by now, at `rate` per second. */
function pace(rate: number, total: number, send: (k: number, at: number) => void): Promise<void> {
  return new Promise((resolve) => {
    const start = now();
    let k = 0;
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
      for (; k < due; k++) send(k, start + (k * 1000) / rate);
      if (k >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
}

function connectAll(rate: number, concurrency: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    let done = 0;
    let next = 0;
    const total = conns.length;
    if (total === 0) return resolve();
    const finish = (): void => {
      if (++done === total) resolve();
      else if (rate === 0) launch();
    };
    onReady = (c) => {
      ok++;
      lastOkAt = now();
      hist.recordValue(Math.max(1, Math.round((lastOkAt - c.scheduledAt) * 1000)));
      finish();
    };
    onClosed = (_c, was) => {
      if (was !== 'ready') finish(); // refused, failed or closed before it was ready
    };
    const launch = (): void => {
      while (next < total && next - done < concurrency) open(conns[next++]!, now());
    };
    if (rate > 0) void pace(rate, total, (k, at) => open(conns[k]!, at));
    else launch();
    // A handshake that takes longer than timeoutMs is a failure (e.g. the server's accept queue
    // overflowed and the kernel dropped the connection's final ACK): counted, socket dropped.
    const sweep = setInterval(() => {
      const limit = now() - timeoutMs;
      for (const c of conns) {
        if ((c.state === 'http' || c.state === 'ws') && c.scheduledAt < limit) {
          err('handshake timeout');
          c.sock?.resetAndDestroy();
        }
      }
      if (done >= total) clearInterval(sweep);
    }, 500);
  });
}

function send(c: Conn, build: (id: number) => Buffer, at: number): void {
  const id = c.nextId++;
  c.pending.set(id, at);
  c.sock!.write(build(id));
}

function expectReplies(onGood?: (c: Conn) => void): void {
  onReply = (c, ref, good, code) => {
    const at = c.pending.get(ref);
    if (at === undefined) return;
    c.pending.delete(ref);
    if (good) {
      ok++;
      lastOkAt = now();
      hist.recordValue(Math.max(1, Math.round((lastOkAt - at) * 1000)));
      onGood?.(c);
    } else err(`reply ${code ?? 'error'}`);
  };
}

const ready = (): Conn[] => conns.filter((c) => c.state === 'ready');
const roomOf = (c: Conn): string => `bench/${c.idx % spec.rooms}`;

/** One request on every ready connection at once; resolves when all are answered (or at the timeout). */
function requestEach(build: (c: Conn, id: number) => Buffer, timeoutMs: number): Promise<void> {
  const live = ready();
  let left = live.length;
  return new Promise<void>((resolve) => {
    if (left === 0) return resolve();
    expectReplies();
    const count = onReply!;
    onReply = (c, ref, good, code) => {
      count(c, ref, good, code);
      if (--left === 0) resolve();
    };
    const t = now();
    for (const c of live) send(c, (id) => build(c, id), t);
    setTimeout(resolve, timeoutMs).unref();
  });
}

async function run(cmd: Command): Promise<PhaseStats> {
  switch (cmd.cmd) {
    case 'connect':
      return phase(() => connectAll(cmd.rate, cmd.concurrency, cmd.timeoutMs));
    case 'join':
      return phase(() => requestEach((c, id) => dialect.join(id, roomOf(c)), 30_000));
    case 'echo':
      return phase(async () => {
        const live = ready();
        if (live.length === 0) return;
        const ping = (id: number): Buffer => dialect.ping(id);
        if (cmd.rate > 0) {
          expectReplies();
          const total = Math.floor((cmd.rate * cmd.durationMs) / 1000);
          await pace(cmd.rate, total, (k, at) => {
            const c = live[k % live.length]!;
            if (c.state === 'ready') send(c, ping, at);
          });
          await sleep(500); // let the last replies land
        } else {
          let running = true;
          expectReplies((c) => {
            if (running && c.state === 'ready') send(c, ping, now());
          });
          for (const c of live) for (let w = 0; w < cmd.window; w++) send(c, ping, now());
          await sleep(cmd.durationMs);
          running = false;
          await sleep(200);
        }
      });
    case 'fanout':
      return phase(async () => {
        const live = ready();
        const pubs = live.slice(0, Math.min(cmd.publishers, live.length));
        if (pubs.length === 0 || cmd.rate <= 0) return sleep(cmd.durationMs);
        const pad = 'x'.repeat(Math.max(0, cmd.payloadBytes - 40));
        expectReplies();
        const total = Math.floor((cmd.rate * cmd.durationMs) / 1000);
        await pace(cmd.rate, total, (k, at) => {
          const c = pubs[k % pubs.length]!;
          if (c.state === 'ready') send(c, (id) => dialect.publish(id, roomOf(c), at, pad), at);
        });
        // Deliveries still in flight: wait until they stop arriving (at most 10 s).
        for (let i = 0, seen = -1; i < 100 && deliveries !== seen; i++) {
          seen = deliveries;
          await sleep(300);
        }
      });
    case 'refresh':
      return phase(() => requestEach((c, id) => dialect.refresh(id, refreshTokens[c.idx - spec.first]!), cmd.timeoutMs));
    case 'hold':
      return phase(() => sleep(cmd.durationMs));
    case 'close':
      return phase(async () => {
        const live = conns.filter((c) => c.sock);
        await new Promise<void>((resolve) => {
          let left = live.length;
          if (left === 0) return resolve();
          onClosed = () => {
            if (--left === 0) resolve();
          };
          // Send a close frame and let the server close TCP first: the TIME_WAIT then sits on the
          // server's side and does not eat the generator's ephemeral ports for the next run.
          for (const c of live) {
            const sock = c.sock!;
            sock.write(frame(OP_CLOSE, Buffer.from([0x03, 0xe8])));
            sock.once('end', () => sock.destroy());
          }
          setTimeout(() => {
            for (const c of live) c.sock?.resetAndDestroy();
            resolve();
          }, 5000).unref();
        });
        for (const c of conns) c.state = 'idle';
      });
  }
}

process.on('message', (msg: { init?: WorkerSpec; run?: Command }) => {
  if (msg.init) {
    spec = msg.init;
    dialect = dialectFor(spec.target, spec.encoding);
    mintTokens();
    process.send!({ ev: 'ready' });
    return;
  }
  if (msg.run) {
    run(msg.run).then(
      (stats) => process.send!({ ev: 'done', stats }),
      (e: unknown) => process.send!({ ev: 'failed', error: String((e as Error).stack ?? e) }),
    );
  }
});
process.on('disconnect', () => process.exit(0));
