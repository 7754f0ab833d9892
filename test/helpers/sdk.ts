// Helpers for the client SDK's tests: a token source that counts its calls, and a recorder of a
// client's events, awaited with conditions rather than sleeps.
import type { ClientEvents, WsgateClient } from '../../src/client/client.js';
import { until } from './wait.js';

export interface TokenSource {
  readonly getToken: () => string;
  /** every token handed out, in order */
  readonly tokens: string[];
  readonly calls: number;
}

/** getToken backed by `make(call)`, where call counts from 1. */
export function tokenSource(make: (call: number) => string): TokenSource {
  const tokens: string[] = [];
  return {
    getToken: () => {
      const t = make(tokens.length + 1);
      tokens.push(t);
      return t;
    },
    tokens,
    get calls() {
      return tokens.length;
    },
  };
}

export type Recorded = { readonly [K in keyof ClientEvents]: Array<ClientEvents[K]> };

/** Records every event of a client, from now on. */
export function record(client: WsgateClient): Recorded {
  const r: { [K in keyof ClientEvents]: Array<ClientEvents[K]> } = { state: [], connected: [], message: [], presence: [], 'token:expiring': [], 'token:refreshed': [], error: [] };
  for (const k of Object.keys(r) as Array<keyof ClientEvents>) client.on(k, (e) => (r[k] as unknown[]).push(e));
  return r;
}

/** Resolves with the first event (already recorded or to come) that satisfies `pred`. */
export async function seen<K extends keyof ClientEvents>(rec: Recorded, event: K, pred: (e: ClientEvents[K]) => boolean = () => true, ms = 8000): Promise<ClientEvents[K]> {
  let found: ClientEvents[K] | undefined;
  await until(() => (found = (rec[event] as Array<ClientEvents[K]>).find(pred)) !== undefined, ms, 10).catch(() => {
    throw new Error(`no ${String(event)} event in time; states: ${rec.state.map((s) => `${s.state}${s.code ? `(${s.code})` : ''}`).join(' ')}; errors: ${rec.error.map((e) => e.code).join(' ')}`);
  });
  return found!;
}

/** The states a client went through, e.g. ['connected', 'reconnecting', 'connected']. */
export const states = (rec: Recorded): string[] => rec.state.map((s) => s.state);
