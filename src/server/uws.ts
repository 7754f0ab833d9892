// The one module that loads uWebSockets.js. Everything else imports uWS from here.
//
// 1. upstream: the `uWebSockets.js` dependency (upstream v20.57.0 binaries; glibc >= 2.38).
// 2. compat:   the `uws-compat` dependency (v20.30.0 built for glibc >= 2.27, Node 20 only).
//    Its own entry point silently swaps in a pure-JS fallback when the binary fails to load,
//    so we never call it: we load its native binary file directly.
// Anything that is not a native addon is refused. WSGATE_UWS_BUILD=upstream|compat forces one.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as UWS from 'uWebSockets.js';

export type Uws = typeof UWS;
export type { TemplatedApp, WebSocket, HttpResponse, HttpRequest, us_socket_context_t, us_listen_socket } from 'uWebSockets.js';

export type UwsBuild = 'upstream' | 'compat';
export interface UwsInfo {
  readonly build: UwsBuild;
  readonly version: string;
  readonly package: string;
  readonly binary: string;
  /** request-header bytes uWS buffers before it answers 431 itself (UWS_HTTP_MAX_HEADERS_SIZE) */
  readonly maxHeaderBytes: number;
}

/**
 * UWS_HTTP_MAX_HEADERS_SIZE, read by uWS once, when its binary loads: the bytes of request headers
 * it buffers before answering 431 itself. The builds differ without it (measured with raw requests:
 * upstream v20.57 refuses past 4 KiB, so a token with a few dozen permissions never reached the
 * gateway; v20.30 let 100 KB through). 20 KiB holds the longest token the gateway reads (16 KiB,
 * auth/extract.ts) with the usual headers around it. An operator's own value is kept.
 */
export const DEFAULT_MAX_HEADER_BYTES = 20_480;

const require = createRequire(import.meta.url);
const binaryName = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

interface Candidate {
  readonly build: UwsBuild;
  readonly dep: string;
}
const CANDIDATES: readonly Candidate[] = [
  { build: 'upstream', dep: 'uWebSockets.js' },
  { build: 'compat', dep: 'uws-compat' },
];

export class UwsLoadError extends Error {
  constructor(readonly attempts: readonly string[]) {
    super(`no native uWebSockets.js build could be loaded:\n  - ${attempts.join('\n  - ')}`);
    this.name = 'UwsLoadError';
  }
}

/** True when `mod` is the native addon (its App is a C++ function), not a JS re-implementation. */
export function isNative(mod: unknown): boolean {
  const app = (mod as { App?: unknown } | null)?.App;
  return typeof app === 'function' && /\{\s*\[native code\]\s*\}/.test(Function.prototype.toString.call(app));
}

function tryLoad(c: Candidate): { uws: Uws; info: UwsInfo } {
  // Resolve the package's main file (its exports map hides package.json), then its root.
  const main = require.resolve(c.dep);
  const root = c.build === 'compat' ? join(dirname(main), '..') : dirname(main);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  const binary = join(root, c.build === 'compat' ? 'binaries' : '', binaryName);
  const mod = require(binary) as unknown;
  if (!isNative(mod)) throw new Error(`${binary} is not a native uWS addon`);
  // uWS reads the variable with atoi() and falls back to 4096 only when it is unset
  const maxHeaderBytes = Number.parseInt(process.env.UWS_HTTP_MAX_HEADERS_SIZE ?? '4096', 10) || 0;
  return { uws: mod as Uws, info: { build: c.build, version: pkg.version, package: pkg.name, binary, maxHeaderBytes } };
}

let loaded: { uws: Uws; info: UwsInfo } | undefined;

/** Loads uWS once (WSGATE_UWS_BUILD may force a build); throws UwsLoadError when no native build loads. */
export function loadUws(): { uws: Uws; info: UwsInfo } {
  if (loaded === undefined) process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(DEFAULT_MAX_HEADER_BYTES);
  return (loaded ??= resolveUws(process.env.WSGATE_UWS_BUILD));
}

/** Tries the builds in order (or only the forced one); no caching. */
export function resolveUws(force: string | undefined): { uws: Uws; info: UwsInfo } {
  if (force !== undefined && force !== '' && force !== 'upstream' && force !== 'compat') {
    throw new UwsLoadError([`WSGATE_UWS_BUILD="${force}" is not upstream or compat`]);
  }
  const attempts: string[] = [];
  for (const c of CANDIDATES) {
    if (force && force !== c.build) continue;
    try {
      return tryLoad(c);
    } catch (e) {
      attempts.push(`${c.build} (${c.dep}): ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new UwsLoadError(attempts);
}
