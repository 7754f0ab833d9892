// Room names and the uWS topics and store keys they map to. Pure.
//
// A client names a room ("chat/42"); the gateway qualifies it with the tenant from the token,
// so no client can name another tenant's room. The tenant is length-prefixed: no choice of
// tenant and room can produce another pair's key ("a/r" + "b" vs "a" + "r/b").
import type { Encoding } from '../protocol/codec.js';

// Segments of [A-Za-z0-9_-.:@] separated by single slashes. '*' and '#' are reserved for
// permission patterns, so a room can never look like a pattern.
const ROOM_RE = /^[A-Za-z0-9_\-.:@]+(\/[A-Za-z0-9_\-.:@]+)*$/;

export function validRoom(name: string, maxLength: number): boolean {
  return name.length > 0 && name.length <= maxLength && ROOM_RE.test(name);
}

/** The tenant-qualified room key (presence store, bus). */
export function roomKey(tenant: string, room: string): string {
  return `${tenant.length}:${tenant}/${room}`;
}

/** The uWS topic of a room for one encoding: subscribers of each encoding get their own bytes. */
export function topicOf(key: string, encoding: Encoding): string {
  return encoding === 'msgpack' ? key + '#m' : key + '#j';
}

/** The client-facing room name of a room key. */
export function roomOf(key: string): string {
  const colon = key.indexOf(':');
  const len = Number(key.slice(0, colon));
  return key.slice(colon + 1 + len + 1);
}
