// Public-key verification: PEM files, JWKS by kid with rotation against a local JWKS server,
// issuer/audience, and algorithm confusion. Real sockets, memory store.
import { createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { claims, ecKeys, rsaKeys, signWith } from '../helpers/tokens.js';

const rsa = rsaKeys();
const ec = ecKeys();

describe('PEM public keys', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsgate-keys-'));
    writeFileSync(join(dir, 'rsa.pem'), rsa.publicKey);
    writeFileSync(join(dir, 'ec.pem'), ec.publicKey);
    gw = await startGateway({ WSGATE_JWT_SECRET: '', WSGATE_JWT_PUBLIC_KEY_FILE: `${join(dir, 'rsa.pem')},${join(dir, 'ec.pem')}`, WSGATE_JWT_ISSUER: 'https://auth.example', WSGATE_JWT_AUDIENCE: 'wsgate' });
  });
  afterAll(() => gw.stop());

  const ok = { iss: 'https://auth.example', aud: 'wsgate' };

  it('accepts RS256, PS256 and ES256 tokens of the configured keys', async () => {
    for (const token of [signWith(rsa.privateKey, 'RS256', ok), signWith(rsa.privateKey, 'PS256', ok), signWith(ec.privateKey, 'ES256', ok)]) {
      const { client } = await connect(gw.url, token);
      await client.close();
    }
  });

  it('refuses a wrong issuer, a wrong audience, and another key', async () => {
    for (const token of [
      signWith(rsa.privateKey, 'RS256', { ...ok, iss: 'https://evil.example' }),
      signWith(rsa.privateKey, 'RS256', { ...ok, aud: 'other' }),
      signWith(rsaKeys().privateKey, 'RS256', ok),
    ]) {
      expect((await refused(connect(gw.url, token))).body.error).toBe('Authentication failed');
    }
  });

  it('refuses HS256 signed with the public key as HMAC secret (algorithm confusion)', async () => {
    const forged = createSigner({ key: rsa.publicKey, algorithm: 'HS256', noTimestamp: true })(claims(ok));
    expect((await refused(connect(gw.url, forged))).body.code).toBe('AUTH_FAILED');
  });

  it('refuses alg none', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims(ok))).toString('base64url');
    expect((await refused(connect(gw.url, `${header}.${body}.`))).body.code).toBe('AUTH_FAILED');
  });
});

describe('JWKS', () => {
  let server: Server;
  let keys: Array<{ kid: string; pem: string }> = [];
  let fetches = 0;
  let gw: TestGateway;
  const jwk = (kid: string, pem: string) => ({ ...createPublicKey(pem).export({ format: 'jwk' }), kid, use: 'sig' });

  beforeAll(async () => {
    keys = [{ kid: 'k1', pem: rsa.publicKey }];
    server = createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: keys.map((k) => jwk(k.kid, k.pem)) }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    gw = await startGateway({ WSGATE_JWT_SECRET: '', WSGATE_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, WSGATE_JWKS_MIN_REFRESH_MS: '300' });
  });
  afterAll(async () => {
    await gw.stop();
    server.close();
  });

  it('verifies by kid with keys fetched once at start', async () => {
    expect(fetches).toBe(1);
    const { client, connected } = await connect(gw.url, signWith(rsa.privateKey, 'RS256', { sub: 'jw' }, 'k1'));
    expect(connected.user).toBe('jw');
    await client.close();
    expect(fetches).toBe(1);
  });

  it('rotation: a token with a new kid triggers a refetch and is accepted', async () => {
    const next = ecKeys();
    keys = [{ kid: 'k1', pem: rsa.publicKey }, { kid: 'k2', pem: next.publicKey }];
    await new Promise((r) => setTimeout(r, 350));
    const before = fetches;
    const { client } = await connect(gw.url, signWith(next.privateKey, 'ES256', {}, 'k2'));
    expect(fetches).toBe(before + 1);
    await client.close();
  });

  it('unknown kids are rate limited: a burst causes at most one fetch', async () => {
    const stranger = rsaKeys();
    await new Promise((r) => setTimeout(r, 350));
    const before = fetches;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => refused(connect(gw.url, signWith(stranger.privateKey, 'RS256', {}, `nope-${i}`)))));
    expect(results.every((r) => r.body.code === 'AUTH_FAILED')).toBe(true);
    expect(fetches - before).toBe(1);
  });

  it('a token without kid is refused when the set has several keys', async () => {
    expect((await refused(connect(gw.url, signWith(rsa.privateKey, 'RS256')))).status).toBe(401);
  });

  it('exposes the verifier cache hit ratio (reconnect with the same token hits)', async () => {
    const token = signWith(rsa.privateKey, 'RS256', { sub: 'again' }, 'k1');
    const hitsBefore = gw.verifier.cache.hits;
    for (let i = 0; i < 3; i++) {
      const { client } = await connect(gw.url, token);
      await client.close();
    }
    expect(gw.verifier.cache.hits - hitsBefore).toBe(2);
    const text = await (await fetch(`${gw.http}/metrics`)).text();
    expect(text).toMatch(/wsgate_jwt_cache_hit_ratio 0\.\d+/);
  });
});
