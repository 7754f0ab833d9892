// Standalone reproducer for uWebSockets issue #1928 (sockets closed right after an asynchronous
// upgrade completed inside res.cork) and a bench of the mitigations. See docs/UWS-1928.md.
//
//   node dist/scripts/uws-storm.js [--conns 100000] [--rounds 4] [--variants a,b,..] [--strace]
//
// For each round and variant it forks a fresh minimal uWS server (the build comes from
// src/server/uws.ts; WSGATE_UWS_BUILD=upstream|compat forces one), then storms it with raw TCP
// WebSocket clients (one process, `--concurrency` in flight, destinations spread over
// 127.0.0.1..127.0.0.N so no address pair runs out of ephemeral ports). Every client waits for the
// 101 and the server's first frame, holds the socket `--hold` ms, then hangs up. A socket the server
// closes (FIN/RST) before that is LOST. The server counts the same thing from its side: a socket
// whose close handler already ran when `res.cork(() => res.upgrade(...))` returned was closed by
// cork() itself (the #1928 path).
//
// A variant is `<upgrade>-<first frame>`:
//   upgrade: sync   upgrade inside the upgrade handler (a cache hit: no await)
//            cork   await a promise resolved on a later loop turn (setImmediate, like a Redis reply),
//                   then res.cork(() => res.upgrade(...))          <- the gateway today
//            nocork the same await, then res.upgrade(...) without res.cork (uWS prints a warning)
//   frame:   open   ws.send(first frame) inside the open handler (inside the upgrade's cork)
//            pre    the frame is encoded before res.cork (passed in the user data), sent inside open
//            defer  setImmediate, then ws.cork(() => ws.send(first frame))   <- the gateway today
//            after  ws.cork(() => ws.send(first frame)) right after res.cork returns (same tick)
//            none   no frame (the client only checks that the socket stays open)
// `--frame` picks the first frame: msgpack (default: the gateway's `connected` message encoded per
// connection with the gateway's codec), bin (one preallocated 160-byte binary frame), json (a ~230-byte text frame), or text:LEN:CHAR (a text frame of LEN bytes whose byte
// 44 and 52 are CHAR: used to show the mechanism, see the doc).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeMsgpack } from '../src/protocol/codec.js';

// ---------------------------------------------------------------------------------------------
// options
const argv = process.argv.slice(2);
const role = argv[0] === 'server' || argv[0] === 'client' ? argv[0] : 'main';
function opt(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : def;
}
const flag = (name: string): boolean => argv.includes(`--${name}`);

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const PROTOCOL = 'wsgate.v1.msgpack';

let connSeq = 0;
/** The gateway's `connected` message, encoded per connection with the gateway's own msgpack codec. */
function connectedMsgpack(): Buffer {
  const n = connSeq++;
  return encodeMsgpack({
    type: 'connected', connectionId: `c-${process.pid}-${n}`, user: `user${n % 1000}`, tenant: 'tenant-a', exp: 1893456000 + n,
    permissions: ['chat:read', 'chat:write', 'presence:*'], node: 'node-1', protocol: PROTOCOL,
  });
}

function firstFrame(spec: string): string | Buffer {
  if (spec === 'msgpack') return connectedMsgpack();
  if (spec === 'bin') return Buffer.alloc(160, 0x5a);
  if (spec === 'json') {
    return JSON.stringify({
      type: 'connected', connectionId: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', user: 'user-000123', tenant: 'tenant-a',
      exp: 1893456000, permissions: ['chat:read', 'chat:write', 'presence:*'], node: 'node-1', protocol: 'wsgate.v1.json',
    });
  }
  const m = /^text:(\d+):(.)$/.exec(spec);
  if (!m) throw new Error(`bad --frame ${spec}`);
  const chars = Array.from({ length: Number(m[1]) }, () => 'a');
  for (const i of [44, 52]) if (i < chars.length) chars[i] = m[2]!;
  return chars.join('');
}

// ---------------------------------------------------------------------------------------------
// server
interface ServerStats {
  build: string;
  version: string;
  upgrades: number;
  opens: number;
  closes: number;
  closedInCork: number;
  noOpen: number;
  framesSent: number;
  sendFailures: number;
  aborted: number;
  cpuUserUs: number;
  cpuSystemUs: number;
}

interface Data {
  /** pre mode: the first frame, encoded before the upgrade */
  frame?: Buffer | string;
  ws: import('../src/server/uws.js').WebSocket<Data> | undefined;
  closed: boolean;
}

async function server(): Promise<void> {
  const { loadUws } = await import('../src/server/uws.js');
  const { uws, info } = loadUws();
  const [upgradeMode, frameMode] = opt('variant', 'cork-open').split('-') as [string, string];
  const frameSpec = opt('frame', 'msgpack');
  const fixedFrame = firstFrame(frameSpec);
  const binary = typeof fixedFrame !== 'string';
  const st: ServerStats = {
    build: info.build, version: info.version, upgrades: 0, opens: 0, closes: 0, closedInCork: 0, noOpen: 0,
    framesSent: 0, sendFailures: 0, aborted: 0, cpuUserUs: 0, cpuSystemUs: 0,
  };
  // --open-alloc N: open also allocates one fresh N-byte ArrayBuffer (off-heap: V8 mallocs its
  // BackingStore), to test which allocations inside the upgrade's cork trigger the close.
  const openAlloc = Number(opt('open-alloc', '0'));
  let sink: ArrayBuffer | undefined;
  let cpu0 = process.cpuUsage();
  let lastOpened: Data | undefined;
  const later = (): Promise<void> => new Promise((r) => setImmediate(r));

  const send = (ws: import('../src/server/uws.js').WebSocket<Data>, pre?: Buffer | string): void => {
    const r = ws.send(pre ?? (frameSpec === 'msgpack' ? connectedMsgpack() : fixedFrame), binary);
    if (r === 2) st.sendFailures++; // DROPPED
    else st.framesSent++;
  };

  const app = uws.App();
  app.ws<Data>('/ws', {
    compression: uws.DISABLED,
    maxPayloadLength: 64 * 1024,
    idleTimeout: 120,
    maxBackpressure: 1024 * 1024,
    closeOnBackpressureLimit: false,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      // Copy what the gateway copies: the request lives on the stack only during this call.
      const key = req.getHeader('sec-websocket-key');
      const protocols = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      void req.getHeader('authorization');
      void req.getUrl();
      const protocol = protocols.split(',')[0]!.trim();
      const data: Data = { ws: undefined, closed: false };
      st.upgrades++;
      if (upgradeMode === 'sync') {
        res.upgrade(data, key, protocol, extensions, context);
        return;
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
        st.aborted++;
      });
      void later().then(() => {
        if (aborted) return;
        if (frameMode === 'pre') data.frame = frameSpec === 'msgpack' ? connectedMsgpack() : fixedFrame;
        lastOpened = undefined;
        if (upgradeMode === 'cork') res.cork(() => res.upgrade(data, key, protocol, extensions, context));
        else if (upgradeMode === 'nocork') res.upgrade(data, key, protocol, extensions, context);
        else throw new Error(`unknown upgrade mode ${upgradeMode}`);
        // open ran synchronously inside res.upgrade; some builds hand open a copy of `data`.
        const d = lastOpened as Data | undefined;
        if (!d) st.noOpen++;
        else if (d.closed) st.closedInCork++;
        else if (frameMode === 'after' && d.ws) {
          const ws = d.ws;
          ws.cork(() => send(ws));
        }
      });
    },
    open: (ws) => {
      st.opens++;
      const data = ws.getUserData();
      data.ws = ws;
      lastOpened = data;
      if (openAlloc > 0) sink = new ArrayBuffer(openAlloc);
      if (frameMode === 'open') send(ws);
      else if (frameMode === 'pre') send(ws, data.frame);
      else if (frameMode === 'defer') {
        setImmediate(() => {
          if (!data.closed) ws.cork(() => send(ws));
        });
      }
    },
    close: (ws) => {
      st.closes++;
      ws.getUserData().closed = true;
    },
  });
  app.listen('0.0.0.0', 0, (ls) => {
    if (!ls) throw new Error('listen failed');
    process.send!({ ev: 'listening', port: uws.us_socket_local_port(ls) });
  });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'start') cpu0 = process.cpuUsage();
    else if (m.cmd === 'stats') {
      const c = process.cpuUsage(cpu0);
      st.cpuUserUs = c.user;
      st.cpuSystemUs = c.system;
      process.send!({ ev: 'stats', stats: st });
    } else if (m.cmd === 'exit') process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// client
interface ClientStats {
  conns: number;
  ok: number;
  /** closed by the server after the 101 and the first frame, before we hung up */
  lostAfterFrame: number;
  /** closed by the server after the 101, without the first frame */
  lostNoFrame: number;
  /** 101 but no first frame within --frame-timeout, socket still open */
  noFrame: number;
  /** server sent a close frame */
  closeFrames: number;
  errors: Record<string, number>;
  elapsedMs: number;
  cpuUserUs: number;
  cpuSystemUs: number;
}

async function client(): Promise<void> {
  const port = Number(opt('port', '0'));
  const total = Number(opt('n', '1000'));
  const concurrency = Number(opt('concurrency', '500'));
  const addrs = Number(opt('addrs', '32'));
  const holdMs = Number(opt('hold', '30'));
  const frameTimeoutMs = Number(opt('frame-timeout', '3000'));
  const expectFrame = opt('expect-frame', '1') === '1';
  const token = 'Bearer ' + 'x'.repeat(280);
  const connection = opt('connection', 'Upgrade');
  const request = Buffer.from(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: ${connection}\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Protocol: ${PROTOCOL}\r\nAuthorization: ${token}\r\n\r\n`,
    'latin1',
  );
  const st: ClientStats = { conns: 0, ok: 0, lostAfterFrame: 0, lostNoFrame: 0, noFrame: 0, closeFrames: 0, errors: {}, elapsedMs: 0, cpuUserUs: 0, cpuSystemUs: 0 };
  const err = (k: string): void => void (st.errors[k] = (st.errors[k] ?? 0) + 1);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let started = 0;
  let done = 0;

  await new Promise<void>((resolveAll) => {
    const finishOne = (): void => {
      done++;
      if (done === total) resolveAll();
      else if (started < total) startOne();
    };
    const startOne = (): void => {
      const idx = started++;
      st.conns++;
      const sock: Socket = connect({ host: `127.0.0.${1 + (idx % addrs)}`, port });
      sock.setNoDelay(true);
      let head: Buffer = Buffer.alloc(0);
      let upgraded = false;
      let gotFrame = false;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        outcome();
        sock.destroy();
        finishOne();
      };
      const onFirstFrame = (): void => {
        gotFrame = true;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => settle(() => st.ok++), holdMs);
      };
      const frames = (buf: Buffer): void => {
        // Server frames are unmasked; the first one is all we look at.
        if (buf.length < 2) return;
        const op = buf[0]! & 0x0f;
        if (op === 8) {
          st.closeFrames++;
          return;
        }
        if (!gotFrame) onFirstFrame();
      };
      sock.on('connect', () => sock.write(request));
      sock.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (upgraded) return frames(chunk);
        head = head.length ? Buffer.concat([head, chunk]) : chunk;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = Number(head.toString('latin1', 9, 12));
        if (status !== 101) return settle(() => err(`status ${status}`));
        upgraded = true;
        if (expectFrame) timer = setTimeout(() => settle(() => st.noFrame++), frameTimeoutMs);
        else timer = setTimeout(() => settle(() => st.ok++), holdMs);
        const rest = head.subarray(end + 4);
        if (rest.length) frames(rest);
      });
      const lost = (why: string): void => {
        if (settled) return;
        if (!upgraded) return settle(() => err(why));
        settle(() => (gotFrame || !expectFrame ? st.lostAfterFrame++ : st.lostNoFrame++));
      };
      sock.on('end', () => lost('end before 101'));
      sock.on('error', (e: NodeJS.ErrnoException) => lost(`error ${e.code ?? e.message}`));
      sock.on('close', () => lost('close before 101'));
    };
    for (let i = 0; i < Math.min(concurrency, total); i++) startOne();
  });
  st.elapsedMs = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  st.cpuUserUs = c.user;
  st.cpuSystemUs = c.system;
  process.send!({ ev: 'done', stats: st });
}

// ---------------------------------------------------------------------------------------------
// orchestrator
interface Row {
  variant: string;
  conns: number;
  ok: number;
  lost: number;
  lostAfterFrame: number;
  lostNoFrame: number;
  noFrame: number;
  errors: Record<string, number>;
  closedInCork: number;
  serverCpuUs: number;
  clientMs: number;
  syscalls: Record<string, number>;
}

const self = fileURLToPath(import.meta.url);

function waitFor<T>(cp: ChildProcess, ev: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { ev: string } & Record<string, unknown>): void => {
      if (m.ev === ev) {
        cp.off('message', onMsg);
        resolve(m as T);
      }
    };
    cp.on('message', onMsg);
    cp.once('exit', (code) => reject(new Error(`child exited (${code}) while waiting for ${ev}`)));
  });
}

/** Parses `strace -c` output: syscall name -> calls. */
function parseStrace(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length >= 5 && /^\d/.test(f[0]!) && f[f.length - 1] !== 'total') {
      const name = f[f.length - 1]!;
      const calls = Number(f[3]);
      if (Number.isFinite(calls)) out[name] = calls;
    }
  }
  return out;
}

async function runOne(variant: string, n: number, strace: boolean): Promise<Row> {
  const frame = opt('frame', 'msgpack');
  const serverArgs = ['server', '--variant', variant, '--frame', frame, '--open-alloc', opt('open-alloc', '0')];
  const straceOut = `/tmp/uws-storm-strace-${process.pid}-${variant}.txt`;
  let srv: ChildProcess;
  const stdio: ['ignore', 'inherit', 'pipe', 'ipc'] = ['ignore', 'inherit', 'pipe', 'ipc'];
  if (strace) {
    srv = spawn('strace', ['-f', '-c', '-o', straceOut, process.execPath, self, ...serverArgs], { stdio });
  } else {
    srv = fork(self, serverArgs, { stdio });
  }
  // The nocork variant prints a uWS warning per upgrade: count those lines, do not print them.
  let warnings = 0;
  let partial = '';
  srv.stderr!.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (l.startsWith('Warning: uWS')) warnings++;
      else if (l.trim() !== '') process.stderr.write(l + '\n');
    }
  });
  const { port } = await waitFor<{ port: number }>(srv, 'listening');
  srv.send({ cmd: 'start' });
  const cli = fork(self, [
    'client', '--port', String(port), '--n', String(n), '--concurrency', opt('concurrency', '500'), '--addrs', opt('addrs', '32'),
    '--hold', opt('hold', '30'), '--connection', opt('connection', 'Upgrade'), '--frame-timeout', opt('frame-timeout', '3000'), '--expect-frame', variant.endsWith('-none') ? '0' : '1',
  ], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { stats: c } = await waitFor<{ stats: ClientStats }>(cli, 'done');
  // Let the server see the last hang-ups before reading its counters.
  await new Promise((r) => setTimeout(r, 300));
  srv.send({ cmd: 'stats' });
  const { stats: s } = await waitFor<{ stats: ServerStats }>(srv, 'stats');
  const exited = new Promise((r) => srv.once('exit', r));
  srv.send({ cmd: 'exit' });
  await exited;
  let syscalls: Record<string, number> = {};
  if (strace) {
    syscalls = parseStrace(straceOut);
    rmSync(straceOut, { force: true });
  }
  if (warnings) syscalls['(uWS warnings on stderr)'] = warnings;
  return {
    variant, conns: c.conns, ok: c.ok, lost: c.lostAfterFrame + c.lostNoFrame, lostAfterFrame: c.lostAfterFrame, lostNoFrame: c.lostNoFrame,
    noFrame: c.noFrame, errors: c.errors, closedInCork: s.closedInCork, serverCpuUs: s.cpuUserUs + s.cpuSystemUs, clientMs: c.elapsedMs, syscalls,
  };
}

async function main(): Promise<void> {
  const { loadUws } = await import('../src/server/uws.js');
  const { info } = loadUws();
  const variants = opt('variants', 'cork-open,cork-pre,cork-defer,cork-after,cork-none,nocork-open,sync-open').split(',');
  const conns = Number(opt('conns', '100000'));
  const rounds = Number(opt('rounds', '4'));
  const strace = flag('strace');
  const per = Math.ceil(conns / rounds);
  console.log(`# uws-storm: build=${info.build} ${info.package}@${info.version} node=${process.version} glibc=${(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ?? '?'}`);
  console.log(`# ${conns} upgrades per variant in ${rounds} interleaved rounds, frame=${opt('frame', 'msgpack')} concurrency=${opt('concurrency', '500')} hold=${opt('hold', '30')}ms strace=${strace}`);
  const totals = new Map<string, Row>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const row = await runOne(v, per, strace);
      const t = totals.get(v);
      if (!t) totals.set(v, row);
      else {
        for (const k of ['conns', 'ok', 'lost', 'lostAfterFrame', 'lostNoFrame', 'noFrame', 'closedInCork', 'serverCpuUs', 'clientMs'] as const) t[k] += row[k];
        for (const [k, n] of Object.entries(row.errors)) t.errors[k] = (t.errors[k] ?? 0) + n;
        for (const [k, n] of Object.entries(row.syscalls)) t.syscalls[k] = (t.syscalls[k] ?? 0) + n;
      }
      console.log(`round ${r + 1} ${v}: conns=${row.conns} ok=${row.ok} lost=${row.lost} (after frame ${row.lostAfterFrame}, no frame ${row.lostNoFrame}) noFrame=${row.noFrame} closedInCork=${row.closedInCork} errors=${JSON.stringify(row.errors)} serverCpu/conn=${(row.serverCpuUs / row.conns).toFixed(1)}us`);
    }
  }
  const base = totals.get(variants[0]!)!;
  const baseCpu = base.serverCpuUs / base.conns;
  console.log('\n| variant | upgrades | lost (server closed) | of which without first frame | no frame, still open | closed inside res.cork (server) | other errors | server CPU/conn vs ' + variants[0] + ' | send syscalls/conn |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const t of totals.values()) {
    const sends = (t.syscalls['sendto'] ?? 0) + (t.syscalls['sendmsg'] ?? 0) + (t.syscalls['writev'] ?? 0) + (t.syscalls['send'] ?? 0);
    const sendCol = strace ? `${(sends / t.conns).toFixed(3)} (sendto ${t.syscalls['sendto'] ?? 0}, writev ${t.syscalls['writev'] ?? 0}, write ${t.syscalls['write'] ?? 0})` : '-';
    const errs = Object.values(t.errors).reduce((a, b) => a + b, 0);
    console.log(`| ${t.variant} | ${t.conns} | ${t.lost} | ${t.lostNoFrame} | ${t.noFrame} | ${t.closedInCork} | ${errs ? JSON.stringify(t.errors) : 0} | ${(t.serverCpuUs / t.conns / baseCpu).toFixed(2)} (${(t.serverCpuUs / t.conns).toFixed(1)} us) | ${sendCol} |`);
  }
  if (strace) {
    console.log('\nstrace -c -f totals per variant (server process, all threads):');
    for (const t of totals.values()) console.log(`${t.variant}: ${JSON.stringify(t.syscalls)}`);
  }
}

if (role === 'server') void server();
else if (role === 'client') void client();
else
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
