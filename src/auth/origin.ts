// Cross-site WebSocket hijacking defence. Pure.
// - With an allowlist: the Origin must be listed ("*" lists all); requests with no Origin
//   (non-browser clients) pass, since a browser always sends one.
// - Without an allowlist: any origin, except that a token taken from a cookie (which a browser
//   attaches on its own, even for a hostile page) needs a same-origin request (Origin host ==
//   Host) or no Origin at all.
import type { TokenSource } from './extract.js';

export function originAllowed(origin: string, host: string, allowlist: readonly string[] | undefined, source: TokenSource | undefined): boolean {
  if (origin === '') return true;
  if (allowlist !== undefined) return allowlist.includes('*') || allowlist.includes(origin);
  if (source !== 'cookie') return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
