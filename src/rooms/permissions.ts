// Permissions from the token's `permissions` claim. Pure.
//
// Grammar (docs/PROTOCOL.md#permissions):
//   permission := action ":" pattern
//   action     := "join" | "publish" | "presence" | "*"
//   pattern    := segment ("/" segment)*
//   segment    := literal | "*"            ("*" matches exactly one segment)
//   the last segment may be "**"           (one or more segments, any depth)
// Examples: "join:chat/*", "publish:chat/42", "*:lobby", "presence:**", "*:**" (everything).
// Strings that do not parse grant nothing. Rooms are always tenant-scoped: a pattern can only
// match rooms of the token's own tenant.

import { keyOf } from '../keys/keys.js';

export type Action = 'join' | 'publish' | 'presence';
const ACTIONS: readonly Action[] = ['join', 'publish', 'presence'];

export interface Permissions {
  can(action: Action, room: string): boolean;
}

const LITERAL_RE = /^[A-Za-z0-9_\-.:@]+$/;

function compilePattern(pattern: string): RegExp | undefined {
  const segs = pattern.split('/');
  const parts: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '**') {
      if (i !== segs.length - 1) return undefined;
      parts.push('[^/]+(?:/[^/]+)*');
    } else if (s === '*') parts.push('[^/]+');
    else if (LITERAL_RE.test(s)) parts.push(s.replace(/[.]/g, '\\.'));
    else return undefined;
  }
  return new RegExp('^' + parts.join('/') + '$');
}

function compile(perms: readonly string[]): Permissions {
  const byAction = new Map<Action, RegExp[]>(ACTIONS.map((a) => [a, []]));
  for (const p of perms) {
    const colon = p.indexOf(':');
    if (colon <= 0) continue;
    const action = p.slice(0, colon);
    const re = compilePattern(p.slice(colon + 1));
    if (!re) continue;
    if (action === '*') for (const a of ACTIONS) byAction.get(a)!.push(re);
    else if ((ACTIONS as readonly string[]).includes(action)) byAction.get(action as Action)!.push(re);
  }
  return {
    can(action, room) {
      for (const re of byAction.get(action)!) if (re.test(room)) return true;
      return false;
    },
  };
}

// Many connections carry the same permission list (one per role); compiling patterns costs
// microseconds per upgrade, a lookup here far less. Bounded; cleared wholesale when full. The key
// is injective (keys/keys.ts): joining with a separator let the one-entry list
// ["join:lobby\npublish:**"] share the compiled form of ["join:lobby", "publish:**"].
const CACHE_MAX = 1024;
const cache = new Map<string, Permissions>();
// Interned lists (auth/claims.ts) are found by identity first, without building a key.
const byList = new WeakMap<readonly string[], Permissions>();

export function compilePermissions(perms: readonly string[]): Permissions {
  const known = byList.get(perms);
  if (known !== undefined) return known;
  const p = compileKeyed(perms);
  if (Object.isFrozen(perms)) byList.set(perms, p);
  return p;
}

function compileKeyed(perms: readonly string[]): Permissions {
  const key = keyOf(...perms);
  let p = cache.get(key);
  if (!p) {
    if (cache.size >= CACHE_MAX) cache.clear();
    p = compile(perms);
    cache.set(key, p);
  }
  return p;
}
