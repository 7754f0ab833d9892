// TLS on the client listener: wss:// and https:// with a certificate made for the test (a CA and
// leaves signed by it, bench/lib/certs.ts); the certificate reloaded (SIGHUP, and in process)
// without dropping the connections that are open, rooms spanning the old and the new listener;
// broken files refused at start and at a reload; the pending-socket bound on the TLS listener.
import { copyFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, type Leaf, type TestCa } from '../../bench/lib/certs.js';
import { connect, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/redis.js';
import { spawnGateway } from '../helpers/process.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

let ca: TestCa;
let first: Leaf;
let second: Leaf;
/** the files the gateway is configured with; a test copies a leaf over them before a reload */
let live: { cert: string; key: string };
let gw: TestGateway;

const install = (leaf: Leaf): void => {
  copyFileSync(leaf.certFile, live.cert);
  copyFileSync(leaf.keyFile, live.key);
};

beforeAll(async () => {
  ca = makeCa();
  first = ca.issue('first');
  second = ca.issue('second');
  live = { cert: join(ca.dir, 'live.pem'), key: join(ca.dir, 'live.key') };
  install(first);
  gw = await startGateway({ WSGATE_PORT: String(await freePort()), WSGATE_TLS_CERT_FILE: live.cert, WSGATE_TLS_KEY_FILE: live.key });
});
afterAll(async () => {
  await gw?.stop();
  rmSync(ca.dir, { recursive: true, force: true });
});

/** The fingerprint of the certificate a new TLS connection to `port` is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/** GET over https, trusting the test CA. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: ca.ca, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

const metric = async (g: { http: string }, line: RegExp): Promise<number> => {
  const m = line.exec((await get(`${g.http}/metrics`)).body);
  return m ? Number(m[1]) : NaN;
};

const open = async (sub: string): Promise<Client> => (await connect(gw.url, hs({ sub }), { ca: ca.ca, json: true })).client;

describe('TLS', () => {
  it('serves wss:// and https:// with the configured certificate; a plain-text client gets nothing', async () => {
    expect(gw.url.startsWith('wss://')).toBe(true);
    const c = await open('alice');
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await c.close();
    expect(await servedFingerprint(gw.port)).toBe(first.fingerprint256);
    const health = await get(`${gw.http}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body).tls).toMatchObject({ fingerprint256: first.fingerprint256, listeners: 1 });
    const plain = new WebSocket(`ws://127.0.0.1:${gw.port}/ws`, { headers: { authorization: `Bearer ${hs()}` } });
    await expect(new Promise((resolve, reject) => (plain.once('open', resolve), plain.once('error', reject)))).rejects.toBeDefined();
    expect(await metric(gw, /^wsgate_info\{[^}]*tls="true"[^}]*\} (\d+)$/m)).toBe(1);
    expect(await metric(gw, /^wsgate_tls_certificate_not_after_seconds (\d+)$/m)).toBe(gw.certificate!.notAfterSec);
    expect(gw.certificate!.notAfterSec * 1000).toBe(Date.parse(new (await import('node:crypto')).X509Certificate(first.cert).validTo));
  });

  it('a reload serves the new certificate to new connections; open ones stay, and a room spans the old and the new listener', async () => {
    const before = await open('before');
    await before.request({ type: 'join', rooms: ['r'] });
    install(second);
    expect(gw.reloadTls()!.fingerprint256).toBe(second.fingerprint256);
    // the old listen socket is closed: every new connection gets the new certificate
    for (let i = 0; i < 10; i++) expect(await servedFingerprint(gw.port)).toBe(second.fingerprint256);
    const after = await open('after');
    await after.request({ type: 'join', rooms: ['r'] });
    expect(await metric(gw, /^wsgate_uws_apps (\d+)$/m)).toBe(2);
    // publishes cross the two apps both ways, the publisher excluded (uWS keeps topics per app)
    expect((await before.request({ type: 'publish', room: 'r', data: 'old to new' })).type).toBe('ack');
    expect((await after.type('message')).data).toBe('old to new');
    expect((await after.request({ type: 'publish', room: 'r', data: 'new to old' })).type).toBe('ack');
    expect((await before.type('message')).data).toBe('new to old');
    expect(await before.none((m) => m.type === 'message')).toBe(true);
    expect(await after.none((m) => m.type === 'message')).toBe(true);
    await after.request({ type: 'publish', room: 'r', data: 'echoed', echo: true });
    expect((await after.type('message')).data).toBe('echoed');
    expect((await before.type('message')).data).toBe('echoed');
    expect(await metric(gw, /^wsgate_tls_reloads_total\{result="ok"\} (\d+)$/m)).toBe(1);
    expect(gw.logs.some((l) => l.includes('"TLS certificate reloaded"') && l.includes(second.fingerprint256))).toBe(true);
    // the old app goes once its last socket closed
    await before.close();
    await until(() => gw.hub.size === 1);
    expect(await metric(gw, /^wsgate_uws_apps (\d+)$/m)).toBe(1);
    await after.close();
  });

  it('a reload with broken files fails, is counted and logged, and the certificate served stays', async () => {
    const served = gw.certificate!.fingerprint256;
    copyFileSync(first.keyFile, live.key); // the key of another certificate
    expect(() => gw.reloadTls()).toThrow(/is not the key of/);
    rmSync(live.key);
    expect(() => gw.reloadTls()).toThrow(/WSGATE_TLS_KEY_FILE .*ENOENT/);
    expect(await metric(gw, /^wsgate_tls_reloads_total\{result="failed"\} (\d+)$/m)).toBe(2);
    expect(gw.logs.filter((l) => l.includes('"TLS certificate reload failed')).length).toBe(2);
    expect(await servedFingerprint(gw.port)).toBe(served);
    expect(await metric(gw, /^wsgate_uws_apps (\d+)$/m)).toBe(1);
    const c = await open('still');
    expect((await c.request({ type: 'ping' })).type).toBe('ack');
    await c.close();
    install(second);
  });

  it('an encrypted key is read with its passphrase; a wrong one stops the start with a clear message', async () => {
    const enc = ca.issue('encrypted', { passphrase: 'correct horse' });
    const g = await startGateway({ WSGATE_TLS_CERT_FILE: enc.certFile, WSGATE_TLS_KEY_FILE: enc.keyFile, WSGATE_TLS_PASSPHRASE: 'correct horse' });
    try {
      expect(await servedFingerprint(g.port)).toBe(enc.fingerprint256);
      // WSGATE_PORT=0 here: resolved to a free port before listening (server/listen.ts), and shared
      // with TLS, so a reload can listen on it a second time
      expect(g.reloadTls()?.fingerprint256).toBe(enc.fingerprint256);
      expect(await servedFingerprint(g.port)).toBe(enc.fingerprint256);
    } finally {
      await g.stop();
    }
    for (const pass of ['wrong', undefined]) {
      const env: Record<string, string> = { WSGATE_TLS_CERT_FILE: enc.certFile, WSGATE_TLS_KEY_FILE: enc.keyFile, ...(pass ? { WSGATE_TLS_PASSPHRASE: pass } : {}) };
      await expect(startGateway(env)).rejects.toThrow(/encrypted and WSGATE_TLS_PASSPHRASE is missing or wrong/);
    }
    await expect(startGateway({ WSGATE_TLS_CERT_FILE: enc.keyFile, WSGATE_TLS_KEY_FILE: enc.keyFile })).rejects.toThrow(/not a PEM certificate/);
  });

  it('the pending-socket bound holds on the TLS listener', async () => {
    const g = await startGateway({ WSGATE_TLS_CERT_FILE: first.certFile, WSGATE_TLS_KEY_FILE: first.keyFile, WSGATE_MAX_PENDING_PER_ADDRESS: '3' });
    const sockets: Socket[] = [];
    try {
      if (g.gateway.pendingMode === 'socket') {
        // upstream: a TCP connection that never starts its TLS handshake is a pending socket too
        const closed: boolean[] = [];
        for (let i = 0; i < 6; i++) {
          const s = tcpConnect({ host: '127.0.0.1', port: g.port, localAddress: '127.0.0.7' });
          const k = closed.push(false) - 1;
          s.on('close', () => (closed[k] = true));
          s.on('error', () => undefined);
          sockets.push(s);
        }
        await until(() => closed.filter(Boolean).length === 3);
        expect(g.pending.size).toBe(3);
        expect(g.metrics.pendingRefused.get('address')).toBe(3);
        for (const s of sockets) s.destroy();
        await until(() => g.pending.size === 0);
      }
      // upgrades over TLS release their count (both builds): 12 one after the other from an address allowed 3
      const clients: Client[] = [];
      for (let i = 0; i < 12; i++) clients.push((await connect(g.url, hs({ sub: `p${i}` }), { ca: ca.ca, localAddress: '127.0.0.8' })).client);
      await until(() => g.pending.size === 0);
      expect(g.hub.size).toBe(12);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      for (const s of sockets) s.destroy();
      await g.stop();
    }
  });
});

describe('SIGHUP to the process', () => {
  it('reloads the certificate without dropping the open connection; every log line names the node', async () => {
    install(first);
    const port = await freePort();
    const p = await spawnGateway({ WSGATE_PORT: String(port), WSGATE_NODE_ID: 'hup-node', WSGATE_TLS_CERT_FILE: live.cert, WSGATE_TLS_KEY_FILE: live.key });
    try {
      expect(await servedFingerprint(port)).toBe(first.fingerprint256);
      const { client } = await connect(`wss://127.0.0.1:${port}/ws`, hs({ sub: 'held' }), { ca: ca.ca, json: true });
      install(second);
      p.proc.kill('SIGHUP');
      await until(() => p.output.some((l) => l.includes('"TLS certificate reloaded"')));
      expect(await servedFingerprint(port)).toBe(second.fingerprint256);
      expect((await client.request({ type: 'ping' })).type).toBe('ack');
      expect(p.proc.exitCode).toBeNull();
      await client.close();
    } finally {
      expect(await p.kill('SIGTERM')).toBe(0);
    }
    const lines = p.output.filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const l of lines) expect(JSON.parse(l), l).toMatchObject({ node: 'hup-node' });
  });
});
