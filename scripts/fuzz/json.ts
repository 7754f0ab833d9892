// A JSON text writer for the fuzzer: number literals as written ("-0", "1e309", 30 digits),
// duplicate and "__proto__" keys, strings with every escape style, raw bytes that are not
// UTF-8, and deep nesting written by a loop. Pure.
import { wtf8, type DeepShape } from './msgpack.js';

export type StrStyle =
  /** JSON.stringify: lone surrogates as \udXXX escapes (valid UTF-8 text) */
  | 'json'
  /** every non-ASCII unit as \uXXXX */
  | 'ascii'
  /** only " \ and C0 escaped, the rest as raw bytes (lone surrogates become invalid UTF-8) */
  | 'raw';

export type Js =
  | { readonly k: 'lit'; readonly text: string }
  | { readonly k: 'str'; readonly s: string; readonly style: StrStyle }
  | { readonly k: 'arr'; readonly items: readonly Js[] }
  | { readonly k: 'obj'; readonly entries: ReadonlyArray<readonly [Js, Js]> }
  | { readonly k: 'deep'; readonly shape: DeepShape; readonly depth: number; readonly leaf: Js }
  | { readonly k: 'raw'; readonly bytes: Uint8Array };

function quote(s: string, style: StrStyle): string {
  if (style === 'json') return JSON.stringify(s);
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0x20 || (style === 'ascii' && c > 0x7e)) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

const LEVEL: Record<DeepShape, [string, string]> = { array: ['[', ']'], map: ['{"a":', '}'], mixed: ['[{"a":', '}]'] };

/** Bytes per level of a deep node. */
export function jsLevelBytes(shape: DeepShape): number {
  return shape === 'array' ? 2 : shape === 'map' ? 6 : 4;
}

function write(parts: Array<string | Uint8Array>, j: Js): void {
  switch (j.k) {
    case 'lit':
      return void parts.push(j.text);
    case 'str':
      return void parts.push(quote(j.s, j.style));
    case 'arr':
      parts.push('[');
      j.items.forEach((it, i) => {
        if (i > 0) parts.push(',');
        write(parts, it);
      });
      return void parts.push(']');
    case 'obj':
      parts.push('{');
      j.entries.forEach(([k, v], i) => {
        if (i > 0) parts.push(',');
        write(parts, k);
        parts.push(':');
        write(parts, v);
      });
      return void parts.push('}');
    case 'deep': {
      const [open, close] = LEVEL[j.shape];
      const n = j.shape === 'mixed' ? Math.floor(j.depth / 2) : j.depth;
      const odd = j.shape === 'mixed' && j.depth % 2 === 1;
      parts.push(open.repeat(n) + (odd ? '[' : ''));
      write(parts, j.leaf);
      return void parts.push((odd ? ']' : '') + close.repeat(n));
    }
    case 'raw':
      return void parts.push(j.bytes);
  }
}

/** The frame's bytes (a text frame; not necessarily UTF-8). */
export function encodeJs(j: Js): Buffer {
  const parts: Array<string | Uint8Array> = [];
  write(parts, j);
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(wtf8(p)) : p)));
}

export const lit = (text: string): Js => ({ k: 'lit', text });
export const jstr = (s: string, style: StrStyle = 'json'): Js => ({ k: 'str', s, style });
export const jarr = (items: readonly Js[]): Js => ({ k: 'arr', items });
export const jobj = (entries: ReadonlyArray<readonly [string, Js]>): Js => ({ k: 'obj', entries: entries.map(([k, v]) => [jstr(k), v] as const) });

/** True when the bytes are well-formed UTF-8 (what a WebSocket text frame must be). */
export function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}
