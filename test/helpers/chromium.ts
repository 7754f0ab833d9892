// Real headless Chromium, driven over the DevTools protocol with the `ws` package: open pages,
// evaluate expressions in them (awaiting promises), collect their console and exceptions.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

export interface Page {
  /** Evaluates an expression in the page; awaits a promise it returns; the value comes back as JSON. */
  eval<T = unknown>(expression: string): Promise<T>;
  /** console output and uncaught exceptions of the page, as text */
  readonly console: string[];
  close(): Promise<void>;
}

export interface Browser {
  open(url: string): Promise<Page>;
  close(): Promise<void>;
}

interface CdpReply {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'wsgate-chromium-'));
  const proc: ChildProcess = spawn(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
    // its own process group: close() ends the browser and every helper process it started
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const endpoint = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start:\n${err}`)), 20_000);
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code}):\n${err}`));
    });
  });
  const cdp = new WebSocket(endpoint, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    cdp.once('open', resolve);
    cdp.once('error', reject);
  });
  let nextId = 1;
  const calls = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  const sessions = new Map<string, (m: CdpReply) => void>();
  cdp.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString()) as CdpReply;
    if (m.id !== undefined) {
      const c = calls.get(m.id);
      calls.delete(m.id);
      if (m.error) c?.reject(new Error(m.error.message));
      else c?.resolve(m.result ?? {});
    } else if (m.sessionId) sessions.get(m.sessionId)?.(m);
  });
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      calls.set(id, { resolve, reject });
      cdp.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });

  return {
    async open(url) {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      const consoleLines: string[] = [];
      let loaded: () => void = () => undefined;
      const load = new Promise<void>((resolve) => (loaded = resolve));
      sessions.set(sessionId, (m) => {
        if (m.method === 'Runtime.consoleAPICalled') {
          const args = (m.params!.args as Array<{ value?: unknown; description?: string }>).map((a) => (a.value !== undefined ? String(a.value) : a.description));
          consoleLines.push(`${String(m.params!.type)}: ${args.join(' ')}`);
        } else if (m.method === 'Runtime.exceptionThrown') {
          const d = m.params!.exceptionDetails as { text: string; exception?: { description?: string } };
          consoleLines.push(`exception: ${d.exception?.description ?? d.text}`);
        } else if (m.method === 'Page.loadEventFired') loaded();
      });
      await send('Runtime.enable', {}, sessionId);
      await send('Page.enable', {}, sessionId);
      await send('Page.navigate', { url }, sessionId);
      await load;
      return {
        console: consoleLines,
        async eval<T>(expression: string): Promise<T> {
          const r = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId)) as {
            result: { value?: T };
            exceptionDetails?: { text: string; exception?: { description?: string } };
          };
          if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
          return r.result.value as T;
        },
        async close() {
          sessions.delete(sessionId);
          await send('Target.closeTarget', { targetId });
        },
      };
    },
    async close() {
      cdp.close();
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
      rmSync(profile, { recursive: true, force: true, maxRetries: 10 });
    },
  };
}
