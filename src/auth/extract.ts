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
  /** every Sec-WebSocket-Protocol header line, joined with ', ' (they are one list, RFC 7230) */
  readonly protocols: string;
  /** every Cookie header line, joined with '; ' */
  readonly cookie: string;
  readonly origin: string;
  readonly host: string;
  /** Authorization, Origin or Host appeared twice with different values: refused as a conflict */
  readonly ambiguous?: boolean;
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

/** The access_token parameter; null when it appears twice with different values (a conflict). */
function fromQuery(query: string): string | undefined | null {
  if (query === '' || !query.includes('access_token=')) return undefined;
  const all = new URLSearchParams(query).getAll('access_token').filter((v) => v !== '');
  if (all.length === 0) return undefined;
  return all.every((v) => v === all[0]) ? all[0] : null;
}

/** The named cookie's value; null when the cookie appears twice with different values (a conflict). */
export function cookieValue(header: string, name: string): string | undefined | null {
  if (header === '') return undefined;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v: string;
    try {
      v = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      continue;
    }
    if (v === '') continue;
    if (found === undefined) found = v;
    else if (v !== found) return null;
  }
  return found;
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
  if (req.ambiguous === true) return { kind: 'conflict' };
  const fromSubprotocol = fromProtocols(protocols);
  if (fromSubprotocol === null || !consider(fromSubprotocol, 'subprotocol')) return { kind: 'conflict' };
  if (opts.query) {
    const q = fromQuery(req.query);
    if (q === null || !consider(q, 'query')) return { kind: 'conflict' };
  }
  if (opts.cookie !== undefined) {
    const c = cookieValue(req.cookie, opts.cookie);
    if (c === null || !consider(c, 'cookie')) return { kind: 'conflict' };
  }
  if (token === undefined || source === undefined) return { kind: 'none' };
  return { kind: 'token', token, source };
}
