// wsgate/client in Node (20 has no global WebSocket): the `ws` package, the token in the
// Authorization header, and refused upgrades read (status, the JSON body's { error, code },
// Retry-After) so the close-code policy can act on them: a 401 is never retried with the same token.
import WebSocket from 'ws';
import { Refusal as Refusals } from '../errors/codes.js';
import { WsgateClient, type ClientOptions } from './client.js';
import type { Refusal } from './errors.js';
import { decode, encode } from './msgpack.js';
import type { OpenSocket } from './transport.js';

export interface ConnectOptions extends ClientOptions {
  /** more options for the `ws` package's WebSocket (e.g. ca, localAddress, extra headers) */
  readonly wsOptions?: Readonly<Record<string, unknown>>;
}

/** Opens a client: it connects at once and keeps a session up until close(). */
export function connect(options: ConnectOptions): WsgateClient {
  return new WsgateClient(options, nodeSocket(options.wsOptions ?? {}), { encode, decode });
}

/** Largest refusal body read; the gateway's are under 100 bytes. */
const MAX_REFUSAL_BODY = 4096;

export function nodeSocket(wsOptions: Readonly<Record<string, unknown>>): OpenSocket {
  return (url, protocol, token, events) => {
    const headers = { ...(wsOptions.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` };
    const ws = new WebSocket(url, [protocol], { ...wsOptions, headers });
    let refusal: Refusal | undefined;
    // With a listener here, ws leaves the refused request to us: read the body, then end it.
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_REFUSAL_BODY) chunks.push(c);
        size += c.length;
      });
      const end = (): void => {
        let body: { error?: unknown; code?: unknown } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          // not the gateway's JSON (a proxy's page): the status alone decides
        }
        const retryAfter = Number(res.headers['retry-after']);
        refusal = {
          status: res.statusCode ?? 0,
          code: typeof body?.code === 'string' ? body.code : '',
          error: typeof body?.error === 'string' ? body.error : '',
          retryAfterSec: Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
        };
        ws.terminate();
      };
      res.on('end', end);
      res.on('error', end);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => events.message(isBinary ? data : data.toString('utf8')));
    ws.on('open', () => events.open());
    ws.on('error', () => undefined); // a close (1006) follows
    ws.on('close', (code: number, reason: Buffer) => {
      if (refusal) events.close(refusalCloseCode(refusal), refusal.error, refusal);
      else events.close(code, reason.toString('utf8'));
    });
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
      terminate: () => ws.terminate(),
    };
  };
}

/** The close code the gateway's close mode sends for a refusal (401 AUTH_FAILED: 4002), or 1006 for a status that is not the gateway's. */
export function refusalCloseCode(r: Refusal): number {
  for (const k of Object.values(Refusals)) if (k.code === r.code && k.status === r.status) return k.close.code;
  return 1006;
}

export * from './exports.js';
