// Room names and the uWS topics and store keys they map to. Pure.
//
// A client names a room ("chat/42"); the gateway qualifies it with the tenant from the token,
// so no client can name another tenant's room. The room key is keyOf(tenant, room)
// (keys/keys.ts): length-prefixed parts, so no choice of tenant and room produces another pair's
// key ("a/r" + "b" vs "a" + "r/b").
import { keyOf2 } from '../keys/keys.js';
import type { Encoding } from '../protocol/messages.js';

// Segments of [A-Za-z0-9_-.:@] separated by single slashes. '*' and '#' are reserved for
// permission patterns, so a room can never look like a pattern. ASCII only: a room name's UTF-8
// bytes are its characters, so the byte limit is the length limit.
const ROOM_RE = /^[A-Za-z0-9_\-.:@]+(\/[A-Za-z0-9_\-.:@]+)*$/;

export function validRoom(name: string, maxLength: number): boolean {
  return name.length > 0 && name.length <= maxLength && ROOM_RE.test(name);
}

/** The tenant-qualified room key (presence store, bus, topics). */
export function roomKey(tenant: string, room: string): string {
  return keyOf2(tenant, room);
}

/** The uWS topic of a room for one encoding: subscribers of each encoding get their own bytes. */
export function topicOf(key: string, encoding: Encoding): string {
  return encoding === 'msgpack' ? key + '#m' : key + '#j';
}

/** The client-facing room name of a room key (its second part). */
export function roomOf(key: string): string {
  const c1 = key.indexOf(':');
  const afterTenant = c1 + 1 + Number(key.slice(0, c1));
  const c2 = key.indexOf(':', afterTenant);
  return key.slice(c2 + 1, c2 + 1 + Number(key.slice(afterTenant, c2)));
}

/** The tenant of a room key (its first part). */
export function tenantOf(key: string): string {
  const c1 = key.indexOf(':');
  return key.slice(c1 + 1, c1 + 1 + Number(key.slice(0, c1)));
}
