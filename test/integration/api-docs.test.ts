// docs/API.md is kept true: every `curl` example on it is run with real curl against two real
// gateways on one real redis-server (node-a and node-b, set up as the page tells), and its status
// and JSON must be the ones shown under it. Values that change from run to run (timestamps, uptime)
// must have the type shown. The page documents every route and every error of the catalogue.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminApi } from '../../src/admin/api.js';
import { AdminError } from '../../src/errors/codes.js';
import { roomKey } from '../../src/rooms/rooms.js';
import { connect, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hsIat } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
const KEY = 'docs-key-0123456789abcdefghijklmnopqrstuvwxyz';
const DOC_BASE = 'http://127.0.0.1:9090';
/** Fields whose value differs per run: only their type is compared. */
const VOLATILE = new Set(['ts', 'revokedBefore', 'uptimeSec']);

interface Example {
  readonly command: string;
  readonly status: number;
  readonly answer: unknown;
}

const EXAMPLE = /```sh\n(curl [\s\S]+?)\n```\n\nAnswer \((\d{3})\):\n\n```json\n([\s\S]+?)\n```/g;
const examples: Example[] = [...doc.matchAll(EXAMPLE)].map((m) => ({ command: m[1]!, status: Number(m[2]), answer: JSON.parse(m[3]!) as unknown }));

function run(command: string, base: string): Promise<{ status: number; body: unknown }> {
  const line = `${command.replaceAll(DOC_BASE, base)} -w '\\n%{http_code}'`;
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', line], { env: { ...process.env, WSGATE_ADMIN_KEY: KEY }, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${line}\n${stderr}`));
      const i = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(i + 1)), body: JSON.parse(stdout.slice(0, i)) as unknown });
    });
  });
}

/** `actual` equals `expected`, except that VOLATILE fields need only the same type. */
function like(actual: unknown, expected: unknown, path = '$'): void {
  if (expected !== null && typeof expected === 'object') {
    expect(actual !== null && typeof actual === 'object' && Array.isArray(actual) === Array.isArray(expected), path).toBe(true);
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    expect(Object.keys(a).sort(), path).toEqual(Object.keys(e).sort());
    for (const k of Object.keys(e)) {
      if (VOLATILE.has(k)) expect(typeof a[k], `${path}.${k}`).toBe(typeof e[k]);
      else like(a[k], e[k], `${path}.${k}`);
    }
    return;
  }
  expect(actual, path).toEqual(expected);
}

let redis: TestRedis;
let a: TestGateway;
let b: TestGateway;
const clients = new Map<string, Client>();
beforeAll(async () => {
  redis = await startRedis();
  const env = { WSGATE_REDIS_URL: redis.url, WSGATE_KEY_PREFIX: 'docs:', WSGATE_ADMIN_PORT: '0', WSGATE_ADMIN_KEYS: KEY };
  a = await startGateway({ ...env, WSGATE_NODE_ID: 'node-a' });
  b = await startGateway({ ...env, WSGATE_NODE_ID: 'node-b' });
  // The page's cast, connected one after the other so that their connection ids are the page's.
  const cast: Array<[string, TestGateway, Record<string, unknown>, string]> = [
    ['alice@a', a, { sub: 'alice', jti: 'alice-phone' }, 'node-a.1'],
    ['bob@b', b, { sub: 'bob', jti: 'bob-laptop' }, 'node-b.1'],
    ['alice@b', b, { sub: 'alice', jti: 'alice-laptop' }, 'node-b.2'],
    ['carol@a', a, { sub: 'carol', tenant_id: 'globex' }, 'node-a.2'],
    ['dave@b', b, { sub: 'dave' }, 'node-b.3'],
  ];
  for (const [name, g, claims, id] of cast) {
    const { client, connected } = await connect(g.url, hsIat({ iat: Math.floor(Date.now() / 1000) - 60, ...claims }), { json: true });
    expect(connected.connectionId).toBe(id);
    clients.set(name, client);
  }
  for (const name of ['alice@a', 'bob@b']) await clients.get(name)!.request({ type: 'join', rooms: ['chat/42'] });
  await until(async () => (await a.presenceStore.members(roomKey('acme', 'chat/42'))).length === 2 && (await a.registryStore.liveNodes()).length === 2);
});
afterAll(async () => {
  for (const c of clients.values()) c.ws.terminate();
  await Promise.all([a.stop(), b.stop()]);
  await redis.stop();
});

describe('docs/API.md', () => {
  it('every curl example answers the status and JSON shown under it (run in the page\'s order)', async () => {
    const curls = [...doc.matchAll(/```sh\ncurl /g)].length;
    expect(examples.length).toBe(curls); // no curl example without its answer
    expect(examples.length).toBeGreaterThanOrEqual(11);
    for (const ex of examples) {
      const r = await run(ex.command, `http://127.0.0.1:${a.adminPort}`);
      expect(r.status, ex.command).toBe(ex.status);
      like(r.body, ex.answer, ex.command.split('\n')[0]);
    }
  });

  it('the examples did what the page says to the clients', async () => {
    const message = clients.get('bob@b')!.inbox.find((m) => m.type === 'message');
    expect(message).toMatchObject({ room: 'chat/42', data: { text: 'maintenance at 18:00' }, from: '' });
    expect(await clients.get('carol@a')!.closed).toEqual({ code: 4009, reason: 'Disconnected by the server' });
    expect(await clients.get('dave@b')!.closed).toEqual({ code: 4509, reason: 'Reconnect requested' });
    expect(await clients.get('bob@b')!.closed).toEqual({ code: 4003, reason: 'Token revoked' });
    for (const name of ['alice@a', 'alice@b']) expect(await clients.get(name)!.closed).toEqual({ code: 4003, reason: 'Token revoked' });
  });

  it('documents every route, with an example of each', () => {
    const api = new AdminApi({} as never, { maxRoomNameLength: 128, maxPublishBytes: 16384, frame: { maxDepth: 32, maxItems: 10000 }, timeoutMs: 500, defaultTtlSec: 86405 });
    for (const r of api.routes()) {
      expect(doc, r.path).toContain(`### \`${r.method.toUpperCase()} ${r.path}\``);
      expect(examples.some((e) => e.command.includes(`${DOC_BASE}${r.path}`) || e.command.includes(`"${DOC_BASE}${r.path}?`)), r.path).toBe(true);
    }
  });

  it('lists exactly the errors of the catalogue, with their status and message', () => {
    const rows = [...doc.matchAll(/^\| (\d{3}) \| `([^`]+)` \| `([A-Z_]+)` \|/gm)].map((m) => `${m[1]} ${m[3]} ${m[2]}`);
    expect(rows.sort()).toEqual(Object.values(AdminError).map((e) => `${e.status} ${e.code} ${e.error}`).sort());
  });
});
