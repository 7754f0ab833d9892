// A load-generator worker process (forked by bench/lib/generator.ts). Raw TCP sockets, prebuilt
// upgrade requests and frames, minimal parsing: it must never be the bottleneck. It runs the
// phases its parent asks for and answers each with counters and HdrHistograms (microseconds).
//
// Latency is measured from the *scheduled* send time in open-loop mode (rate > 0), as wrk2 does,
// so a stalled server cannot hide its queueing delay (coordinated omission).
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createSigner } from 'fast-jwt';
import * as hdr from 'hdr-histogram-js';
import { dialectFor, type Dialect, type Target } from './dialects.js';
import { contentLength, FrameParser, OP_CLOSE, OP_PING, OP_PONG, frame, parseHead, upgradeRequest } from './wire.js';

export interface WorkerSpec {
  readonly index: number;
  readonly target: Target;
  readonly encoding: 'json' | 'msgpack';
  readonly host: string;
  /** the target's ports: several for a multi-process target (--gateway-procs) */
  readonly ports: readonly number[];
  /** global index of this worker's first connection, and how many it owns */
  readonly first: number;
  readonly conns: number;
  /** spread connections over 127.0.0.1 .. 127.0.0.N (~28k ephemeral ports per address pair) */
  readonly addrs: number;
  readonly secret: string;
  readonly tokenTtlSec: number;
  readonly tenant: string;
  readonly rooms: number;
  /** mixed: every room on every process; rooms: room r's members all on process r mod N */
  readonly placement: 'mixed' | 'rooms';
  readonly jtiPrefix: string;
  /** mint 100 tokens and share them (verifier-cache hits) instead of one per connection */
  readonly reuseTokens: boolean;
  /** TLS: a full handshake per connection (no session resumption), the server's certificate not verified (its cost is the client's, not the server's) */
  readonly tls: boolean;
}

export type Command =
  | { cmd: 'connect'; rate: number; concurrency: number; timeoutMs: number }
  | { cmd: 'join' }
  | { cmd: 'echo'; durationMs: number; rate: number; window: number }
  /** rate > 0: open loop at `rate` publishes/s; rate 0: closed loop, `window` publishes in flight per publisher */
  | { cmd: 'fanout'; durationMs: number; publishers: number; rate: number; window: number; payloadBytes: number }
  | { cmd: 'refresh'; timeoutMs: number }
  | { cmd: 'hold'; durationMs: number }
  /** one publish to every room, from its first connection (index = room number), then the deliveries counted */
  | { cmd: 'deliver'; payloadBytes: number }
  /** until the parent says stop (at most durationMs), then until every connection is back (at most 15 s more): a connection that closes reconnects with backoff (full jitter) */
  | { cmd: 'reconnect'; durationMs: number; baseDelayMs: number; maxDelayMs: number }
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
  /** per-second counts from the phase start (reconnect: closes, reconnects, failed attempts) */
  series?: Record<string, number[]>;
  /** connections open at the end of the phase (reconnect) */
  openAtEnd?: number;
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
  readonly token: string;
  /** destination address and port: spread over loopback addresses and the target's processes */
  readonly host: string;
  readonly port: number;
  sock: Socket | undefined;
  state: 'idle' | 'http' | 'ws' | 'ready' | 'closed';
  head: Buffer;
  parser: FrameParser;
  nextId: number;
  /** request id -> scheduled (or actual) send time */
  pending: Map<number, number>;
  scheduledAt: number;
  /** the close code of the server's last close frame (1006: none) */
  closeCode: number;
}

/** What one phase counts, and the callbacks it installs; a fresh one per phase. */
interface PhaseState {
  /** per-second counts (reconnect phase) */
  series: Record<string, number[]> | undefined;
  /** connections open when the phase ended (reconnect phase) */
  openAtEnd: number | undefined;
  hist: hdr.Histogram;
  deliveryHist: hdr.Histogram;
  ok: number;
  deliveries: number;
  errors: Record<string, number>;
  /** time of the phase's last successful operation (or delivery): rates end there, not at a straggler's timeout */
  lastOkAt: number;
  onReady: ((c: Conn) => void) | undefined;
  onReply: ((c: Conn, ref: number, good: boolean, code: string | undefined) => void) | undefined;
  onClosed: ((c: Conn, was: Conn['state']) => void) | undefined;
}

/** Everything a worker holds; functions that change it take it as their first argument. */
interface WorkerState {
  readonly spec: WorkerSpec;
  readonly dialect: Dialect;
  readonly conns: readonly Conn[];
  /** fresh tokens for token:refresh, one per connection, minted before any clock starts */
  readonly refreshTokens: readonly string[];
  phase: PhaseState;
  /** set while waiting at a barrier: the parent releases it once every worker got there */
  release: (() => void) | undefined;
  /** set while a phase runs until told to stop (reconnect): the parent's `stop` ends it */
  stop: (() => void) | undefined;
}

const newPhase = (): PhaseState => ({ series: undefined, openAtEnd: undefined, hist: newHist(), deliveryHist: newHist(), ok: 0, deliveries: 0, errors: {}, lastOkAt: 0, onReady: undefined, onReply: undefined, onClosed: undefined });

const err = (p: PhaseState, reason: string): void => {
  p.errors[reason] = (p.errors[reason] ?? 0) + 1;
};

/**
 * Destination of connection `idx`. Loopback addresses: idx % addrs. Processes of a multi-process
 * target, placement `mixed`: (idx / rooms) % procs, so that every room (idx % rooms) has members on
 * every process and a publish crosses processes; placement `rooms`: (idx % rooms) % procs, so that
 * each room lives on one process and the rooms are spread over the processes.
 */
function destination(spec: Pick<WorkerSpec, 'host' | 'ports' | 'addrs' | 'rooms' | 'placement'>, idx: number): { host: string; port: number } {
  const host = spec.addrs > 1 ? `127.0.0.${1 + (idx % spec.addrs)}` : spec.host;
  const proc = spec.placement === 'rooms' ? idx % spec.rooms : Math.floor(idx / spec.rooms);
  return { host, port: spec.ports[proc % spec.ports.length]! };
}

function init(spec: WorkerSpec): WorkerState {
  const sign = createSigner({ key: spec.secret, algorithm: 'HS256', expiresIn: spec.tokenTtlSec * 1000 });
  const perms = ['*:**'];
  const conns: Conn[] = [];
  const shared = spec.reuseTokens ? Array.from({ length: 100 }, (_, k) => sign({ sub: `user${k}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}shared${k}`, permissions: perms })) : [];
  for (let i = 0; i < spec.conns; i++) {
    const idx = spec.first + i;
    const token = spec.reuseTokens ? shared[idx % 100]! : sign({ sub: `user${idx}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}${idx}`, permissions: perms });
    conns.push({ idx, token, ...destination(spec, idx), sock: undefined, state: 'idle', head: Buffer.alloc(0), parser: undefined as unknown as FrameParser, nextId: 1, pending: new Map(), scheduledAt: 0, closeCode: 1006 });
  }
  const refreshTokens = conns.map((c) => sign({ sub: `user${c.idx}`, tenant_id: spec.tenant, jti: `${spec.jtiPrefix}${c.idx}-r-${randomUUID()}`, permissions: perms }));
  return { spec, dialect: dialectFor(spec.target, spec.encoding), conns, refreshTokens, phase: newPhase(), release: undefined, stop: undefined };
}

function onFrame(w: WorkerState, c: Conn, opcode: number, payload: Buffer): void {
  const p = w.phase;
  if (opcode === OP_PING) {
    c.sock?.write(frame(OP_PONG, Buffer.from(payload)));
    return;
  }
  if (opcode === OP_CLOSE) {
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    c.closeCode = code;
    if (c.state !== 'ready') err(p, `closed ${code} ${payload.subarray(2).toString()}`.trim());
    c.sock?.end();
    return;
  }
  const e = w.dialect.read(opcode, payload, c.token);
  switch (e.kind) {
    case 'ready':
      if (c.state === 'ws') {
        c.state = 'ready';
        p.onReady?.(c);
      }
      return;
    case 'refused':
      err(p, `refused ${e.reason}`);
      c.state = 'closed';
      c.sock?.destroy();
      return;
    case 'send':
      c.sock?.write(e.frame);
      return;
    case 'reply':
      p.onReply?.(c, e.ref, e.ok, e.code);
      return;
    case 'message':
      p.deliveries++;
      p.lastOkAt = now(); // deliveries may trail the last ack (wsgate's cross-node bus): the phase is active until they stop
      if (e.t > 0) p.deliveryHist.recordValue(Math.max(1, Math.round((p.lastOkAt - e.t) * 1000)));
      return;
    default:
      return;
  }
}

function open(w: WorkerState, c: Conn, scheduledAt: number): void {
  c.scheduledAt = scheduledAt;
  c.closeCode = 1006;
  c.state = 'http';
  c.head = Buffer.alloc(0);
  c.pending.clear();
  c.parser = new FrameParser((op, p) => onFrame(w, c, op, p));
  // The address pair is spread over the *destination* side (the servers listen on every loopback
  // address): binding a source address first (localAddress) makes Linux search the whole port
  // range on every bind once ports run short (Node cannot set IP_BIND_ADDRESS_NO_PORT), which
  // turned a 20k-connection storm into minutes; connect() picks ports per destination instead.
  const sock = w.spec.tls ? tlsConnect({ host: c.host, port: c.port, rejectUnauthorized: false, ecdhCurve: 'X25519' }) : tcpConnect({ host: c.host, port: c.port });
  c.sock = sock;
  sock.setNoDelay(true);
  const req = upgradeRequest(`${c.host}:${c.port}`, w.dialect.path, w.dialect.headers(c.token));
  sock.on(w.spec.tls ? 'secureConnect' : 'connect', () => sock.write(req));
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
    err(w.phase, `refused ${head.status}${m ? ' ' + m[1] : ''}`);
    c.state = 'closed';
    sock.destroy();
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    if (c.state !== 'closed') err(w.phase, `socket ${e.code ?? e.message}`);
  });
  sock.on('close', () => {
    const was = c.state;
    c.state = 'closed';
    c.sock = undefined;
    w.phase.onClosed?.(c, was);
  });
}

async function phase(w: WorkerState, fn: (p: PhaseState) => Promise<void>): Promise<PhaseStats> {
  const p = (w.phase = newPhase());
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const progress = setInterval(() => {
    const msg: Progress = { ev: 'progress', open: w.conns.reduce((n, c) => n + (c.state === 'ready' ? 1 : 0), 0), ok: p.ok, deliveries: p.deliveries, errors: Object.values(p.errors).reduce((a, b) => a + b, 0) };
    process.send!(msg);
  }, 500);
  try {
    await fn(p);
  } finally {
    clearInterval(progress);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    ok: p.ok,
    errors: p.errors,
    hist: hdr.encodeIntoCompressedBase64(p.hist),
    deliveries: p.deliveries,
    deliveryHist: hdr.encodeIntoCompressedBase64(p.deliveryHist),
    elapsedMs: now() - t0,
    activeMs: p.lastOkAt > 0 ? p.lastOkAt - t0 : now() - t0,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    ...(p.series ? { series: p.series } : {}),
    ...(p.openAtEnd !== undefined ? { openAtEnd: p.openAtEnd } : {}),
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

function connectAll(w: WorkerState, p: PhaseState, rate: number, concurrency: number, timeoutMs: number): Promise<void> {
  const { conns } = w;
  return new Promise((resolve) => {
    let done = 0;
    let next = 0;
    const total = conns.length;
    if (total === 0) return resolve();
    const finish = (): void => {
      if (++done === total) resolve();
      else if (rate === 0) launch();
    };
    p.onReady = (c) => {
      p.ok++;
      p.lastOkAt = now();
      p.hist.recordValue(Math.max(1, Math.round((p.lastOkAt - c.scheduledAt) * 1000)));
      finish();
    };
    p.onClosed = (_c, was) => {
      if (was !== 'ready') finish(); // refused, failed or closed before it was ready
    };
    const launch = (): void => {
      while (next < total && next - done < concurrency) open(w, conns[next++]!, now());
    };
    if (rate > 0) void pace(rate, total, (k, at) => open(w, conns[k]!, at));
    else launch();
    // A handshake that takes longer than timeoutMs is a failure (e.g. the server's accept queue
    // overflowed and the kernel dropped the connection's final ACK): counted, socket dropped.
    const sweep = setInterval(() => {
      const limit = now() - timeoutMs;
      for (const c of conns) {
        if ((c.state === 'http' || c.state === 'ws') && c.scheduledAt < limit) {
          err(p, 'handshake timeout');
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

function expectReplies(p: PhaseState, onGood?: (c: Conn) => void): void {
  p.onReply = (c, ref, good, code) => {
    const at = c.pending.get(ref);
    if (at === undefined) return;
    c.pending.delete(ref);
    if (good) {
      p.ok++;
      p.lastOkAt = now();
      p.hist.recordValue(Math.max(1, Math.round((p.lastOkAt - at) * 1000)));
      onGood?.(c);
    } else err(p, `reply ${code ?? 'error'}`);
  };
}

const ready = (w: WorkerState): Conn[] => w.conns.filter((c) => c.state === 'ready');
const roomOf = (w: WorkerState, c: Conn): string => `bench/${c.idx % w.spec.rooms}`;

/** One request on every ready connection at once; resolves when all are answered (or at the timeout). */
function requestEach(w: WorkerState, p: PhaseState, build: (c: Conn, id: number) => Buffer, timeoutMs: number): Promise<void> {
  const live = ready(w);
  let left = live.length;
  return new Promise<void>((resolve) => {
    if (left === 0) return resolve();
    expectReplies(p);
    const count = p.onReply!;
    p.onReply = (c, ref, good, code) => {
      count(c, ref, good, code);
      if (--left === 0) resolve();
    };
    const t = now();
    for (const c of live) send(c, (id) => build(c, id), t);
    setTimeout(resolve, timeoutMs).unref();
  });
}

/** Tells the parent this worker got here and waits until every worker has (Generator.run releases them). */
function barrier(w: WorkerState): Promise<void> {
  return new Promise((resolve) => {
    w.release = () => {
      w.release = undefined;
      resolve();
    };
    process.send!({ ev: 'barrier' });
  });
}

/** Deliveries still in flight after the last publish: wait until none arrived for 600 ms (at most 10 s). */
async function drainDeliveries(p: PhaseState): Promise<void> {
  const end = now() + 10_000;
  let seen = -1;
  for (let quiet = 0; quiet < 3 && now() < end; ) {
    quiet = p.deliveries === seen ? quiet + 1 : 0;
    seen = p.deliveries;
    await sleep(200);
  }
}

/**
 * A client that reconnects with backoff, as the SDK does (src/client/policy.ts: full jitter, a
 * uniform delay in [0, min(max, base * 2^attempt)]): every connection that closes opens again, and
 * each second's closes (by the server, a 4500 drain included), reconnects and failed attempts are
 * counted. Runs for `durationMs`, then until every connection is back (at most 15 s more).
 */
async function reconnecting(w: WorkerState, p: PhaseState, durationMs: number, baseDelayMs: number, maxDelayMs: number): Promise<void> {
  const t0 = now();
  const series: Record<string, number[]> = { closed: [], closed4500: [], reconnected: [], failed: [] };
  p.series = series;
  const bump = (k: string): void => {
    const arr = series[k]!;
    const sec = Math.floor((now() - t0) / 1000);
    while (arr.length <= sec) arr.push(0);
    arr[sec]!++;
  };
  const attempts = new Map<Conn, number>();
  let ended = false;
  const retry = (c: Conn): void => {
    const attempt = attempts.get(c) ?? 0;
    attempts.set(c, attempt + 1);
    const delay = Math.floor(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30)));
    setTimeout(() => {
      if (!ended) open(w, c, now());
    }, delay);
  };
  p.onReady = (c) => {
    attempts.delete(c);
    p.ok++;
    p.lastOkAt = now();
    bump('reconnected');
  };
  p.onClosed = (c, was) => {
    if (ended) return;
    if (was === 'ready') {
      bump('closed');
      if (c.closeCode === 4500) bump('closed4500');
    } else bump('failed');
    retry(c);
  };
  await Promise.race([sleep(durationMs), new Promise<void>((resolve) => (w.stop = resolve))]);
  w.stop = undefined;
  const end = now() + 15_000;
  while (now() < end && w.conns.some((c) => c.state !== 'ready')) await sleep(100);
  ended = true;
  p.openAtEnd = w.conns.filter((c) => c.state === 'ready').length;
}

function run(w: WorkerState, cmd: Command): Promise<PhaseStats> {
  switch (cmd.cmd) {
    case 'connect':
      return phase(w, (p) => connectAll(w, p, cmd.rate, cmd.concurrency, cmd.timeoutMs));
    case 'join':
      return phase(w, (p) => requestEach(w, p, (c, id) => w.dialect.join(id, roomOf(w, c)), 30_000));
    case 'echo':
      return phase(w, async (p) => {
        const live = ready(w);
        if (live.length === 0) return;
        const ping = (id: number): Buffer => w.dialect.ping(id);
        if (cmd.rate > 0) {
          expectReplies(p);
          const total = Math.floor((cmd.rate * cmd.durationMs) / 1000);
          await pace(cmd.rate, total, (k, at) => {
            const c = live[k % live.length]!;
            if (c.state === 'ready') send(c, ping, at);
          });
          await sleep(500); // let the last replies land
        } else {
          let running = true;
          expectReplies(p, (c) => {
            if (running && c.state === 'ready') send(c, ping, now());
          });
          for (const c of live) for (let k = 0; k < cmd.window; k++) send(c, ping, now());
          await sleep(cmd.durationMs);
          running = false;
          await sleep(200);
        }
      });
    case 'fanout':
      return phase(w, async (p) => {
        const live = ready(w);
        const pubs = live.slice(0, Math.min(cmd.publishers, live.length));
        if (pubs.length === 0 || (cmd.rate <= 0 && cmd.window <= 0)) {
          await barrier(w);
          await sleep(cmd.durationMs);
          return barrier(w);
        }
        const pad = 'x'.repeat(Math.max(0, cmd.payloadBytes - 40));
        const publish = (c: Conn, at: number): void => send(c, (id) => w.dialect.publish(id, roomOf(w, c), at, pad), at);
        // Every worker counts this phase's deliveries before any publishes: a worker that got the
        // command late would count the first deliveries in the previous phase.
        await barrier(w);
        if (cmd.rate > 0) {
          expectReplies(p);
          const total = Math.floor((cmd.rate * cmd.durationMs) / 1000);
          await pace(cmd.rate, total, (k, at) => {
            const c = pubs[k % pubs.length]!;
            if (c.state === 'ready') publish(c, at);
          });
        } else {
          // Closed loop (saturation): each publisher keeps `window` publishes in flight, the next
          // one sent on each ack, so the offered rate is what the server sustains.
          let running = true;
          expectReplies(p, (c) => {
            if (running && c.state === 'ready') publish(c, now());
          });
          for (const c of pubs) for (let k = 0; k < cmd.window; k++) publish(c, now());
          await sleep(cmd.durationMs);
          running = false;
        }
        // Publishers of other workers may still be publishing to this worker's members (a loaded
        // worker lags): drain only once every worker is done.
        await barrier(w);
        await drainDeliveries(p);
      });
    case 'refresh':
      return phase(w, (p) => requestEach(w, p, (c, id) => w.dialect.refresh(id, w.refreshTokens[c.idx - w.spec.first]!), cmd.timeoutMs));
    case 'hold':
      return phase(w, () => sleep(cmd.durationMs));
    case 'deliver':
      return phase(w, async (p) => {
        // The first connection of each room (connection r is in room r) publishes once; every other
        // member of the room must get it. All workers count before any publishes, and drain only
        // once all have published.
        const pubs = w.conns.filter((c) => c.idx < w.spec.rooms && c.state === 'ready');
        const pad = 'x'.repeat(Math.max(0, cmd.payloadBytes - 40));
        await barrier(w);
        await new Promise<void>((resolve) => {
          let left = pubs.length;
          if (left === 0) return resolve();
          expectReplies(p);
          const count = p.onReply!;
          p.onReply = (c, ref, good, code) => {
            count(c, ref, good, code);
            if (--left === 0) resolve();
          };
          for (const c of pubs) send(c, (id) => w.dialect.publish(id, roomOf(w, c), now(), pad), now());
          setTimeout(resolve, 30_000).unref();
        });
        await barrier(w);
        await drainDeliveries(p);
      });
    case 'reconnect':
      return phase(w, (p) => reconnecting(w, p, cmd.durationMs, cmd.baseDelayMs, cmd.maxDelayMs));
    case 'close':
      return phase(w, async (p) => {
        const live = w.conns.filter((c) => c.sock);
        await new Promise<void>((resolve) => {
          let left = live.length;
          if (left === 0) return resolve();
          p.onClosed = () => {
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
        for (const c of w.conns) c.state = 'idle';
      });
  }
}

// The worker's state exists from the parent's `init` on; every phase runs on it.
if (process.send) {
  let state: WorkerState | undefined;
  process.on('message', (msg: { init?: WorkerSpec; run?: Command; release?: true; stop?: true }) => {
    if (msg.release) return state?.release?.();
    if (msg.stop) return state?.stop?.();
    if (msg.init) {
      state = init(msg.init);
      process.send!({ ev: 'ready' });
      return;
    }
    if (msg.run && state) {
      run(state, msg.run).then(
        (stats) => process.send!({ ev: 'done', stats }),
        (e: unknown) => process.send!({ ev: 'failed', error: String((e as Error).stack ?? e) }),
      );
    }
  });
  process.on('disconnect', () => process.exit(0));
}
