// The browser bundle in real headless Chromium against a real gateway: connect (token in the
// subprotocol list), join, publish and receive in both encodings, refresh on token:expiring,
// reconnect after a gateway restart, the close-code policy, and the README's "see it in a
// browser" page as a new user would open it. The bundle is built here with the build script's
// own function (scripts/build-client.ts), so the page runs exactly what `npm run build` ships.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, buildClient, ROOT, type BuiltClient } from '../../scripts/build-client.js';
import type { WsgateClient } from '../../src/client/client.js';
import { connect } from '../../src/client/node.js';
import { launchChromium, type Browser, type Page } from '../helpers/chromium.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { record, seen } from '../helpers/sdk.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { hs, now } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const REVOKED = `browser-revoked-${process.pid}`;

// In the page: start(name, options) opens a client from the bundle's global `wsgate` and records
// what it sees in runs[name].log; tokens come from this test's /token.
const HARNESS = `
window.runs = {};
window.start = (name, { encoding, sub, ttl = 3600, later, reconnect }) => {
  const log = { states: [], messages: [], errors: [], refreshed: 0, expiring: 0, tokens: 0 };
  const token = (query) => fetch('/token?' + query).then((r) => r.text());
  let laterToken;
  const c = wsgate.connect({
    url: window.GATEWAY,
    encoding,
    // a fresh token for sub (ttl seconds) each call; or, given 'later', the first call's and then always one same token
    getToken: () => (log.tokens++ === 0 || !later ? token('sub=' + sub + '&ttl=' + ttl) : (laterToken ??= token(later))),
    reconnect: reconnect || { baseDelayMs: 50, maxDelayMs: 300, maxAttempts: 100 },
  });
  c.on('state', (s) => log.states.push(s.state + (s.code ? ':' + s.code : '')));
  c.on('message', (m) => log.messages.push({ room: m.room, from: m.from, data: m.data }));
  c.on('error', (e) => log.errors.push(e.code));
  c.on('token:expiring', () => log.expiring++);
  c.on('token:refreshed', () => log.refreshed++);
  runs[name] = { c, log };
  return c.ready().then((s) => s.protocol);
};
// bytes as { bytes: [...] }, so they survive the trip to the test as JSON
window.logOf = (name) => JSON.parse(JSON.stringify(runs[name].log, (k, v) => (v instanceof Uint8Array ? { bytes: Array.from(v) } : v)));
`;

let dir: string;
let built: BuiltClient;
let gw: TestGateway;
let front: TcpProxy;
let http: Server;
let origin: string;
let browser: Browser;
const issued = new Map<string, number>();
const peers: WsgateClient[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsgate-browser-'));
  built = await buildClient(dir);
  gw = await startGateway({ WSGATE_TOKEN_EXPIRING_SEC: '2', WSGATE_EXPIRY_SWEEP_MS: '100', WSGATE_JWT_CLOCK_TOLERANCE_SEC: '0' });
  await gw.revocations.revoke(REVOKED, 600);
  front = await startTcpProxy(gw.port);
  http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (type: string, body: string | Buffer): void => void res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    if (url.pathname === '/token') {
      const sub = url.searchParams.get('sub') ?? 'anon';
      issued.set(sub, (issued.get(sub) ?? 0) + 1);
      const jti = url.searchParams.get('jti') ?? undefined;
      const secret = url.searchParams.get('forged') ? 'forged-secret-0123456789abcdefghijklmnop' : undefined;
      return send('text/plain', hs({ sub, exp: now() + Number(url.searchParams.get('ttl') ?? 3600), ...(jti ? { jti } : {}) }, secret));
    }
    if (url.pathname === '/harness.js') return send('text/javascript', `window.GATEWAY = ${JSON.stringify(front.url)};\n${HARNESS}`);
    if (url.pathname === `/${BUNDLE.iife}`) return send('text/javascript', readFileSync(join(dir, BUNDLE.iife)));
    if (url.pathname === `/${BUNDLE.esm}`) return send('text/javascript', readFileSync(join(dir, BUNDLE.esm)));
    if (url.pathname === '/esm.html') return send('text/html', `<!doctype html><script type="module">import * as m from '/${BUNDLE.esm}'; window.esm = m;</script>`);
    return send('text/html', `<!doctype html><title>wsgate test</title><script src="/${BUNDLE.iife}"></script><script src="/harness.js"></script>`);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.all(peers.map((p) => p.close()));
  await browser?.close();
  await new Promise((resolve) => http?.close(resolve));
  await front?.close();
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A Node client of the SDK, straight to the gateway, to talk to the page. */
function peer(sub: string, url = gw.url): WsgateClient {
  const c = connect({ url, getToken: () => hs({ sub }), reconnect: { baseDelayMs: 20, maxDelayMs: 200, maxAttempts: 100 } });
  peers.push(c);
  return c;
}

async function logOf(page: Page, name: string): Promise<{ states: string[]; messages: Array<{ room: string; from: string; data: unknown }>; errors: string[]; refreshed: number; expiring: number }> {
  return page.eval(`logOf(${JSON.stringify(name)})`);
}

describe('the browser bundle', () => {
  it('holds only the client: its sources, the protocol types and the gateway code catalogue; no Node module, no ws', () => {
    expect(built.inputs.filter((f) => !/^src\/client\/[a-z]+\.ts$/.test(f))).toEqual(['src/errors/codes.ts', 'src/protocol/messages.ts']);
    expect(built.inputs).not.toContain('src/client/node.ts');
    // docs/CLIENT.md states the sizes; they stay within 3% of what is built.
    const doc = readFileSync(join(ROOT, 'docs/CLIENT.md'), 'utf8');
    for (const f of built.files) {
      const name = f.file.slice(dir.length + 1);
      const row = new RegExp(`^\\| \`dist/${name.replace(/\./g, '\\.')}\`[^|]*\\| (\\d+) B \\| (\\d+) B \\|$`, 'm').exec(doc);
      expect(row, `docs/CLIENT.md row for ${name}`).not.toBeNull();
      expect(Math.abs(Number(row![1]) / f.bytes - 1), `${name} minified: ${f.bytes} B built`).toBeLessThan(0.03);
      expect(Math.abs(Number(row![2]) / f.gzipBytes - 1), `${name} gzipped: ${f.gzipBytes} B built`).toBeLessThan(0.03);
    }
  });

  it('in Chromium, both encodings: connect, join, publish and receive with a Node client, binary over msgpack', async () => {
    const page = await browser.open(`${origin}/`);
    expect(await page.eval(`start('json', { encoding: 'json', sub: 'pj' })`)).toBe('wsgate.v1.json');
    expect(await page.eval(`start('mp', { encoding: 'msgpack', sub: 'pm' })`)).toBe('wsgate.v1.msgpack');
    await page.eval(`Promise.all([runs.json.c.join('room/1'), runs.mp.c.join('room/1')])`);
    const node = peer('node');
    const rec = record(node);
    await node.join('room/1');
    await node.publish('room/1', { text: 'to the browser' });
    for (const name of ['json', 'mp']) await until(async () => (await logOf(page, name)).messages.length === 1);
    expect((await logOf(page, 'json')).messages[0]).toEqual({ room: 'room/1', from: 'node', data: { text: 'to the browser' } });
    expect((await logOf(page, 'mp')).messages[0]).toEqual({ room: 'room/1', from: 'node', data: { text: 'to the browser' } });

    await page.eval(`runs.mp.c.publish('room/1', { bin: new Uint8Array([1, 2, 250]) }, { echo: true })`);
    expect((await seen(rec, 'message', (m) => m.from === 'pm')).data).toEqual({ bin: Uint8Array.of(1, 2, 250) });
    await until(async () => (await logOf(page, 'mp')).messages.length === 2);
    expect((await logOf(page, 'mp')).messages[1]!.data).toEqual({ bin: { bytes: [1, 2, 250] } });
    expect(await page.eval(`runs.json.c.presence('nope//room').catch((e) => e instanceof wsgate.WsgateError && e.code)`)).toBe('BAD_ROOM');
    expect((await logOf(page, 'json')).states).toEqual(['connected']);
    expect(page.console.filter((l) => l.startsWith('exception') || l.startsWith('error'))).toEqual([]);
    await page.close();
  });

  it('the ES module build exports the same API', async () => {
    const page = await browser.open(`${origin}/esm.html`);
    await until(async () => (await page.eval(`typeof window.esm`)) === 'object');
    expect(await page.eval(`['connect', 'WsgateClient', 'WsgateError', 'ClientErrorCode'].map((k) => typeof esm[k])`)).toEqual(['function', 'function', 'function', 'object']);
    await page.close();
  });

  it('in Chromium: refresh on token:expiring keeps the session past the first token\'s exp; a restart behind the same address reconnects and re-joins', async () => {
    const page = await browser.open(`${origin}/`);
    const started = now();
    // Tokens of 3 s, announced 2 s before exp: a refresh about every second.
    await page.eval(`start('r', { encoding: 'msgpack', sub: 'pr', ttl: 3 })`);
    await page.eval(`runs.r.c.join('room/r')`);
    await until(async () => (await logOf(page, 'r')).refreshed >= 2 && now() > started + 4, 10_000);
    let log = await logOf(page, 'r');
    expect(log.states).toEqual(['connected']); // never a 4007
    expect(log.errors).toEqual([]);

    const tokensBefore = issued.get('pr')!;
    const old = gw;
    gw = await startGateway({ WSGATE_TOKEN_EXPIRING_SEC: '2', WSGATE_EXPIRY_SWEEP_MS: '100', WSGATE_JWT_CLOCK_TOLERANCE_SEC: '0' });
    await gw.revocations.revoke(REVOKED, 600);
    await old.stop(); // every socket closed with 4500
    front.retarget(gw.port);
    await until(async () => {
      const s = (await logOf(page, 'r')).states;
      return s.length > 1 && s.at(-1) === 'connected';
    });
    log = await logOf(page, 'r');
    expect(log.states[1]).toBe('reconnecting:4500');
    expect(issued.get('pr')!).toBeGreaterThan(tokensBefore); // getToken for the reconnect
    const node = peer('node2');
    await node.publish('room/r', 'after the restart');
    await until(async () => (await logOf(page, 'r')).messages.some((m) => m.data === 'after the restart'));
    await page.close();
  });

  it('in Chromium, the close-code policy: 4006 after a refresh with a revoked token ends the client; a refused upgrade (1006 to a page) is retried a bounded number of times', async () => {
    const page = await browser.open(`${origin}/`);
    await page.eval(`start('revoked', { encoding: 'json', sub: 'pv', ttl: 3, later: 'sub=pv&jti=${REVOKED}' })`);
    await until(async () => (await logOf(page, 'revoked')).states.at(-1)?.startsWith('closed'), 10_000).catch(async (e: unknown) => {
      throw new Error(`${String(e)}: ${JSON.stringify(await logOf(page, 'revoked'))} ${page.console.join('\n')}`);
    });
    const log = await logOf(page, 'revoked');
    expect(log.errors).toEqual(['INVALID_TOKEN']);
    expect(log.states).toEqual(['connected', 'reconnecting:4006', 'closed:4006']);

    const refusedBefore = gw.metrics.refusals.get('AUTH_FAILED') ?? 0;
    const ready = await page.eval(`start('forged', { encoding: 'json', sub: 'pf', later: 'sub=pf&forged=1', reconnect: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 2 } }).then(() => 'connected', (e) => e.code + ':' + e.closeCode)`);
    // The first token is good: a session; make every later one forged, then drop the session.
    expect(ready).toBe('connected');
    front.cut();
    await until(async () => (await logOf(page, 'forged')).states.at(-1)?.startsWith('closed'));
    expect((await logOf(page, 'forged')).states).toEqual(['connected', 'reconnecting:1006', 'reconnecting:1006', 'closed:1006']);
    expect((gw.metrics.refusals.get('AUTH_FAILED') ?? 0) - refusedBefore).toBe(2); // a page cannot read the 401: bounded retries
    await page.close();
  });
});

describe('README: see it in a browser', () => {
  it('the page from the README, opened from a file next to dist/, shows messages arriving and sends its own', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const html = /```html\n([\s\S]+?)\n```/.exec(readme.slice(readme.indexOf('## Clients')))?.[1];
    expect(html, 'an html block in the README Clients section').toBeDefined();
    expect(html).toContain('ws://localhost:8080/ws');
    const site = mkdtempSync(join(tmpdir(), 'wsgate-demo-'));
    mkdirSync(join(site, 'dist'));
    copyFileSync(join(dir, BUNDLE.iife), join(site, 'dist', BUNDLE.iife));
    writeFileSync(join(site, 'demo.html'), html!.replace('ws://localhost:8080/ws', gw.url));
    const token = hs({ sub: 'alice', tenant_id: 'acme' });
    const page = await browser.open(`file://${join(site, 'demo.html')}#${token}`);
    const bob = peer('bob');
    const rec = record(bob);
    await bob.join('demo');
    await until(async () => (await page.eval<string>(`document.body.innerText`)).includes('connected'));
    await bob.publish('demo', { text: 'hello from bob' });
    await until(async () => (await page.eval<string>(`document.body.innerText`)).includes('hello from bob'));
    await page.eval(`document.querySelector('input').value = 'hello from the page'; document.querySelector('form').requestSubmit()`);
    expect((await seen(rec, 'message', (m) => m.from === 'alice')).data).toEqual({ text: 'hello from the page' });
    await page.close();
    rmSync(site, { recursive: true, force: true });
  });
});
