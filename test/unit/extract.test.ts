import { describe, expect, it } from 'vitest';
import { cookieValue, extractToken, splitProtocols, type UpgradeRequest } from '../../src/auth/extract.js';
import { originAllowed } from '../../src/auth/origin.js';

const req = (over: Partial<UpgradeRequest> = {}): UpgradeRequest => ({ url: '/ws', query: '', authorization: '', protocols: '', cookie: '', origin: '', host: 'gw.example', ...over });
const opts = { query: true, cookie: 'wsgate_token' };
const run = (r: UpgradeRequest, o = opts) => extractToken(r, splitProtocols(r.protocols), o);

describe('token extraction', () => {
  it('reads each transport', () => {
    expect(run(req({ authorization: 'Bearer aaa' }))).toEqual({ kind: 'token', token: 'aaa', source: 'header' });
    expect(run(req({ authorization: 'bearer   aaa ' }))).toEqual({ kind: 'token', token: 'aaa', source: 'header' });
    expect(run(req({ protocols: 'wsgate.v1.json, bearer.bbb' }))).toEqual({ kind: 'token', token: 'bbb', source: 'subprotocol' });
    expect(run(req({ query: 'x=1&access_token=ccc' }))).toEqual({ kind: 'token', token: 'ccc', source: 'query' });
    expect(run(req({ cookie: 'a=1; wsgate_token=ddd' }))).toEqual({ kind: 'token', token: 'ddd', source: 'cookie' });
  });

  it('follows the documented precedence when transports agree', () => {
    expect(run(req({ authorization: 'Bearer t', protocols: 'bearer.t', query: 'access_token=t', cookie: 'wsgate_token=t' }))).toMatchObject({ source: 'header' });
    expect(run(req({ protocols: 'bearer.t', query: 'access_token=t' }))).toMatchObject({ source: 'subprotocol' });
    expect(run(req({ query: 'access_token=t', cookie: 'wsgate_token=t' }))).toMatchObject({ source: 'query' });
  });

  it('refuses transports that disagree', () => {
    expect(run(req({ authorization: 'Bearer a', query: 'access_token=b' }))).toEqual({ kind: 'conflict' });
    expect(run(req({ protocols: 'bearer.a', cookie: 'wsgate_token=b' }))).toEqual({ kind: 'conflict' });
    // two bearer. entries are two transports too
    expect(run(req({ protocols: 'wsgate.v1.json, bearer.a, bearer.b' }))).toEqual({ kind: 'conflict' });
    expect(run(req({ protocols: 'bearer.a, bearer.a' }))).toEqual({ kind: 'token', token: 'a', source: 'subprotocol' });
    // repeated query parameters, cookies and header lines
    expect(run(req({ query: 'access_token=a&access_token=b' }))).toEqual({ kind: 'conflict' });
    expect(run(req({ query: 'access_token=a&access_token=a' }))).toMatchObject({ kind: 'token', token: 'a' });
    expect(run(req({ cookie: 'wsgate_token=a; x=1; wsgate_token=b' }))).toEqual({ kind: 'conflict' });
    expect(run(req({ cookie: 'wsgate_token=a; wsgate_token=a' }))).toMatchObject({ kind: 'token', token: 'a' });
    expect(run(req({ authorization: 'Bearer a', ambiguous: true }))).toEqual({ kind: 'conflict' });
  });

  it('honours disabled transports', () => {
    expect(run(req({ query: 'access_token=c' }), { query: false, cookie: 'wsgate_token' })).toEqual({ kind: 'none' });
    expect(run(req({ cookie: 'wsgate_token=d' }), { query: true, cookie: undefined as unknown as string })).toEqual({ kind: 'none' });
  });

  it('ignores other schemes and empty values', () => {
    expect(run(req({ authorization: 'Basic dXNlcg==' }))).toEqual({ kind: 'none' });
    expect(run(req({ authorization: 'Bearer ' }))).toEqual({ kind: 'none' });
    expect(run(req({ protocols: 'bearer.' }))).toEqual({ kind: 'none' });
    expect(run(req({ query: 'access_token=' }))).toEqual({ kind: 'none' });
    expect(cookieValue('wsgate_token=%E0%A4%A', 'wsgate_token')).toBeUndefined();
  });
});

describe('origin check', () => {
  it('with an allowlist: listed origins or no Origin', () => {
    expect(originAllowed('https://app.example', 'gw', ['https://app.example'], 'header')).toBe(true);
    expect(originAllowed('https://evil.example', 'gw', ['https://app.example'], 'header')).toBe(false);
    expect(originAllowed('', 'gw', ['https://app.example'], 'cookie')).toBe(true);
    expect(originAllowed('https://any', 'gw', ['*'], 'cookie')).toBe(true);
  });

  it('without one: anything, but a cookie token needs the same origin', () => {
    expect(originAllowed('https://evil.example', 'gw.example', undefined, 'header')).toBe(true);
    expect(originAllowed('https://evil.example', 'gw.example', undefined, 'cookie')).toBe(false);
    expect(originAllowed('https://gw.example', 'gw.example', undefined, 'cookie')).toBe(true);
    expect(originAllowed('null', 'gw.example', undefined, 'cookie')).toBe(false);
  });
});

describe('JWKS fetch', () => {
  it('stops reading a document past 1 MB, whatever its Content-Length says', async () => {
    const { createServer } = await import('node:http');
    const { httpFetchJson, MAX_JWKS_BYTES } = await import('../../src/auth/jwks.js');
    let written = 0;
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      // no Content-Length: a stream of 64 KiB chunks that would go on for 80 MB
      const chunk = Buffer.alloc(65_536, 0x20);
      const more = (): void => {
        while (written < 80_000_000) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => (written = Infinity));
      more();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      await expect(httpFetchJson(`http://127.0.0.1:${port}/jwks.json`, 5000)).rejects.toThrow('too large');
      expect(MAX_JWKS_BYTES).toBe(1_000_000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
