// A real WebSocket client (the `ws` package) that speaks the wsgate protocol in either encoding.
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Msg = Record<string, unknown> & { type: string };

export interface Refused {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { error?: string; code?: string };
}

export interface ConnectOptions {
  protocols?: string[];
  headers?: Record<string, string>;
  query?: string;
  json?: boolean;
  localAddress?: string;
  /** wss://: the CA to trust */
  ca?: Buffer;
}

export class Client {
  readonly inbox: Msg[] = [];
  private waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private nextId = 1;
  closed: Promise<{ code: number; reason: string }>;

  get json(): boolean {
    return this.ws.protocol === 'wsgate.v1.json';
  }

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString())) as Msg;
      (m as { __binary?: boolean }).__binary = isBinary;
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.inbox.push(m);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  sendRaw(data: string | Buffer, binary?: boolean): void {
    this.ws.send(data, { binary: binary ?? typeof data !== 'string' });
  }

  send(msg: Record<string, unknown>): void {
    if (this.json) this.ws.send(JSON.stringify(msg));
    else this.ws.send(packr.pack(msg));
  }

  next(pred: (m: Msg) => boolean, timeoutMs = 5000): Promise<Msg> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: Msg) => { clearTimeout(t); resolve(m); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out waiting for a message; inbox: ${JSON.stringify(this.inbox).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  type(type: string, timeoutMs?: number): Promise<Msg> {
    return this.next((m) => m.type === type, timeoutMs);
  }

  /** Sends a request and resolves with its one reply (ack, token:refreshed or error). */
  request(msg: Record<string, unknown>): Promise<Msg> {
    const id = this.nextId++;
    this.send({ id, ...msg }); // the id first, as docs/PROTOCOL.md advises
    return this.next((m) => m.ref === id);
  }

  /** True when nothing matching arrives within `ms`. */
  async none(pred: (m: Msg) => boolean, ms = 300): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** Opens a socket; resolves once the `connected` frame arrives, rejects with Refused on an HTTP refusal. */
export function connect(url: string, token: string | undefined, opts: ConnectOptions = {}): Promise<{ client: Client; connected: Msg }> {
  const protocols = opts.protocols ?? (opts.json ? ['wsgate.v1.json'] : []);
  const headers = { ...(opts.headers ?? {}) };
  if (token !== undefined && !opts.headers && !opts.query) headers.authorization = `Bearer ${token}`;
  const full = opts.query ? `${url}?${opts.query}` : url;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(full, protocols, { headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), ...(opts.ca ? { ca: opts.ca } : {}) });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let parsed: Refused['body'] = {};
        try {
          parsed = JSON.parse(body) as Refused['body'];
        } catch {
          /* not JSON */
        }
        reject({ status: res.statusCode ?? 0, headers: res.headers, body: parsed } satisfies Refused);
      });
    });
    ws.on('error', (e) => reject(e));
    ws.once('open', () => {
      const client = new Client(ws);
      client.type('connected').then((connected) => resolve({ client, connected }), reject);
      client.closed.then((c) => reject(Object.assign(new Error(`closed ${c.code} ${c.reason}`), c)));
    });
  });
}

/** Expects an HTTP refusal and returns it. */
export async function refused(p: Promise<unknown>): Promise<Refused> {
  try {
    await p;
  } catch (e) {
    if (typeof (e as Refused).status === 'number') return e as Refused;
    throw e;
  }
  throw new Error('expected the upgrade to be refused');
}

/** Opens a raw socket (no connected frame expected), e.g. for close-mode refusals. */
export function open(url: string, opts: ConnectOptions & { token?: string } = {}): Promise<Client> {
  const headers = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.query ? `${url}?${opts.query}` : url, opts.protocols ?? [], { headers });
    const client = new Client(ws);
    ws.once('open', () => resolve(client));
    ws.on('error', reject);
  });
}
