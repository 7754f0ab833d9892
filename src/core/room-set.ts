// The rooms of one session, held as compactly as the common case allows: nothing, one room key
// (most connections are in one room), or a Set from the second room on. A Set costs ~100 bytes more
// per connection than a string, measured in the heap of 5,000 held connections.

export type RoomSet = string | Set<string> | undefined;

export function roomCount(r: RoomSet): number {
  return r === undefined ? 0 : typeof r === 'string' ? 1 : r.size;
}

export function hasRoom(r: RoomSet, key: string): boolean {
  return r === undefined ? false : typeof r === 'string' ? r === key : r.has(key);
}

/** The set with `key` added (a new value when it changes shape). */
export function withRoom(r: RoomSet, key: string): RoomSet {
  if (r === undefined) return key;
  if (typeof r === 'string') return r === key ? r : new Set([r, key]);
  r.add(key);
  return r;
}

/** The set without `key`. */
export function withoutRoom(r: RoomSet, key: string): RoomSet {
  if (r === undefined || r === key) return undefined;
  if (typeof r === 'string') return r;
  r.delete(key);
  if (r.size === 1) return r.values().next().value;
  return r.size === 0 ? undefined : r;
}

/** The room keys, as an array (a copy: safe to change the set while going through it). */
export function roomList(r: RoomSet): string[] {
  return r === undefined ? [] : typeof r === 'string' ? [r] : [...r];
}
