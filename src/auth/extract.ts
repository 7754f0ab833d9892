// Token extraction from a copied upgrade request. Pure: works on plain strings that the uWS
// adapter copied out of the stack-allocated HttpRequest before any await.
//
// Precedence (first present wins; a different token in another transport is refused):
//   1. Authorization: Bearer <token>
//   2. Sec-WebSocket-Protocol entry `bearer.<token>` (browsers can set nothing else)
//   3. Query parameter access_token (WSGATE_TOKEN_QUERY)
//   4. Cookie (WSGATE_TOKEN_COOKIE)

export type TokenSource = 'header' | 'subprotocol' | 'query' | 'cookie';

export interface UpgradeRequest {
  readonly url: string;
  readonly query: string;
  readonly authorization: string;
  readonly protocols: string;
  readonly cookie: string;
  readonly origin: string;
  readonly host: string;
}

export interface ExtractOptions {
  readonly query: boolean;
  readonly cookie: string | undefined;
}

export type Extracted =
  | { readonly kind: 'token'; readonly token: string; readonly source: TokenSource }
  | { readonly kind: 'none' }
  | { readonly kind: 'conflict' };

// A JWT is three base64url segments; 16 KiB bounds the work an attacker can ask for.
export const MAX_TOKEN_LENGTH = 16_384;

/** Splits a Sec-WebSocket-Protocol header into its entries. */
export function splitProtocols(header: string): string[] {
  if (header === '') return [];
  const out: string[] = [];
  for (const part of header.split(',')) {
    const p = part.trim();
    if (p !== '') out.push(p);
  }
  return out;
}

function fromAuthorization(h: string): string | undefined {
  if (h.length < 7) return undefined;
  if (h.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const t = h.slice(7).trim();
  return t === '' ? undefined : t;
}

/** The token of the `bearer.` entries; null when two entries carry different tokens (a conflict). */
function fromProtocols(protocols: readonly string[]): string | undefined | null {
  let token: string | undefined;
  for (const p of protocols) {
    if (!p.startsWith('bearer.') || p.length <= 7) continue;
    const t = p.slice(7);
    if (token === undefined) token = t;
    else if (t !== token) return null;
  }
  return token;
}

function fromQuery(query: string): string | undefined {
  if (query === '' || !query.includes('access_token=')) return undefined;
  const v = new URLSearchParams(query).get('access_token');
  return v === null || v === '' ? undefined : v;
}

export function cookieValue(header: string, name: string): string | undefined {
  if (header === '') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      const v = decodeURIComponent(raw);
      return v === '' ? undefined : v;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function extractToken(req: UpgradeRequest, protocols: readonly string[], opts: ExtractOptions): Extracted {
  let token: string | undefined;
  let source: TokenSource | undefined;
  const consider = (t: string | undefined, s: TokenSource): boolean => {
    if (t === undefined) return true;
    if (token === undefined) { token = t; source = s; return true; }
    return t === token;
  };
  if (!consider(fromAuthorization(req.authorization), 'header')) return { kind: 'conflict' };
  const fromSubprotocol = fromProtocols(protocols);
  if (fromSubprotocol === null || !consider(fromSubprotocol, 'subprotocol')) return { kind: 'conflict' };
  if (opts.query && !consider(fromQuery(req.query), 'query')) return { kind: 'conflict' };
  if (opts.cookie !== undefined && !consider(cookieValue(req.cookie, opts.cookie), 'cookie')) return { kind: 'conflict' };
  if (token === undefined || source === undefined) return { kind: 'none' };
  return { kind: 'token', token, source };
}
