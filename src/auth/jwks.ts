// JWKS key source: keys by kid, fetched once, cached, refetched when a token names an unknown
// kid (at most once per `minRefreshMs`, and concurrent misses share one fetch). The HTTP
// fetch is injected so that this module does no I/O of its own.
import { createPublicKey, type JsonWebKey } from 'node:crypto';

export type FetchJson = (url: string, timeoutMs: number) => Promise<unknown>;

export interface JwksOptions {
  readonly url: string;
  readonly minRefreshMs: number;
  readonly timeoutMs: number;
  readonly fetchJson: FetchJson;
  readonly now?: () => number;
  readonly onError?: (err: unknown) => void;
}

export class JwksKeyStore {
  private keys = new Map<string, string>();
  private lastFetch = -Infinity;
  private inflight: Promise<void> | undefined;
  fetches = 0;
  failures = 0;

  constructor(private readonly opts: JwksOptions) {}

  /** Fetches the set now (at start-up); failures are reported, not thrown. */
  async warm(): Promise<void> {
    await this.refresh();
  }

  async getKey(kid: string | undefined, _alg: string): Promise<string> {
    if (kid === undefined) {
      // Without a kid, only an unambiguous single-key set can be used.
      if (this.keys.size === 1) return this.keys.values().next().value as string;
      throw new Error('token has no kid');
    }
    const known = this.keys.get(kid);
    if (known !== undefined) return known;
    const now = (this.opts.now ?? Date.now)();
    if (this.inflight) await this.inflight;
    else if (now - this.lastFetch >= this.opts.minRefreshMs) await this.refresh();
    const k = this.keys.get(kid);
    if (k === undefined) throw new Error('unknown kid');
    return k;
  }

  private refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastFetch = (this.opts.now ?? Date.now)();
    this.fetches++;
    this.inflight = this.opts
      .fetchJson(this.opts.url, this.opts.timeoutMs)
      .then((body) => {
        this.keys = parseJwks(body);
      })
      .catch((err: unknown) => {
        this.failures++;
        this.opts.onError?.(err);
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }
}

/** JWKS document -> kid -> PEM (SPKI). Keys meant for encryption and unusable keys are skipped. */
export function parseJwks(body: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const keys = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('JWKS document has no keys array');
  for (const jwk of keys as Array<Record<string, unknown>>) {
    if (jwk === null || typeof jwk !== 'object' || typeof jwk.kid !== 'string') continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.kty === 'oct') continue; // never accept symmetric keys from a key server
    try {
      const pem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      out.set(jwk.kid, pem.toString());
    } catch {
      // unusable key: skipped
    }
  }
  return out;
}

/** Largest JWKS document read; the read stops (and the fetch is aborted) past it. */
export const MAX_JWKS_BYTES = 1_000_000;

/** The default FetchJson: global fetch with a timeout and a size bound enforced while reading. */
export const httpFetchJson: FetchJson = async (url, timeoutMs) => {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error('JWKS fetch timed out')), timeoutMs);
  try {
    const res = await fetch(url, { signal: abort.signal, headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`JWKS endpoint answered ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > MAX_JWKS_BYTES) throw new Error('JWKS document too large');
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += (chunk as Uint8Array).byteLength;
      if (size > MAX_JWKS_BYTES) throw new Error('JWKS document too large');
      chunks.push(chunk as Uint8Array);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } finally {
    clearTimeout(timer);
    abort.abort(); // releases the connection if the body was not read to its end
  }
};
