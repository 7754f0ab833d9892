// The one encoding of composite keys built from claims or client strings: in-memory map keys
// (permission cache, connection caps), room keys, uWS topics, Redis keys and bus fields. Pure.
//
// Each part is written as `<length>:<part>` (length in UTF-16 code units), so the encoding is
// injective: the digits before the first ':' say exactly where the part ends, whatever the part
// contains (separators, digits, ':'). No two lists of parts give the same key, and a key followed
// by any suffix cannot equal another key followed by another suffix unless the lists are equal.
//
// Redis encodes keys as UTF-8, which maps every unpaired surrogate to U+FFFD; two strings that
// differ only there would share a Redis key. Claims that are not well-formed Unicode are therefore
// refused at the upgrade (auth/claims.ts), and room names are ASCII: every part that reaches this
// function from a client is well-formed, so the UTF-8 bytes are injective too.

/** `keyOf('acme', 'chat/42')` = `4:acme7:chat/42`. */
export function keyOf(...parts: readonly string[]): string {
  let out = '';
  for (const p of parts) out += `${p.length}:${p}`;
  return out;
}

/** Two parts, without the rest-parameter array (hot path: one per join, publish and upgrade with caps). */
export function keyOf2(a: string, b: string): string {
  return `${a.length}:${a}${b.length}:${b}`;
}

/** The parts of a key made by keyOf, or undefined when `key` is not such a key. */
export function partsOf(key: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < key.length) {
    const colon = key.indexOf(':', i);
    if (colon <= i || colon - i > 10) return undefined;
    const digits = key.slice(i, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(digits)) return undefined;
    const len = Number(digits);
    const end = colon + 1 + len;
    if (end > key.length) return undefined;
    out.push(key.slice(colon + 1, end));
    i = end;
  }
  return out;
}
