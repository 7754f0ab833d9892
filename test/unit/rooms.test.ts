import { describe, expect, it } from 'vitest';
import { compilePermissions } from '../../src/rooms/permissions.js';
import { roomKey, roomOf, tenantOf, topicOf, validRoom } from '../../src/rooms/rooms.js';

describe('room names', () => {
  it('accepts segments of [A-Za-z0-9_-.:@] separated by single slashes', () => {
    for (const r of ['chat', 'chat/42', 'a.b/c-d/e_f', 'user:1@x']) expect(validRoom(r, 128)).toBe(true);
  });
  it('rejects empty, too long, wildcards, bad slashes, spaces and control characters', () => {
    for (const r of ['', '/chat', 'chat/', 'a//b', 'chat/*', 'chat/#', 'a b', 'x\u0000', 'é', 'a+b']) expect(validRoom(r, 128)).toBe(false);
    expect(validRoom('a'.repeat(129), 128)).toBe(false);
    expect(validRoom('a'.repeat(128), 128)).toBe(true);
  });
});

describe('tenant scoping', () => {
  it('no two tenant/room pairs share a key', () => {
    expect(roomKey('a/r', 'b')).not.toBe(roomKey('a', 'r/b'));
    expect(roomKey('1:x', 'y')).not.toBe(roomKey('1', 'x/y'));
    expect(roomKey('acme', 'chat/1')).toBe('4:acme6:chat/1');
  });
  it('each encoding has its own topic, and the room name comes back out of the key', () => {
    const k = roomKey('acme', 'chat/1');
    expect(topicOf(k, 'msgpack')).not.toBe(topicOf(k, 'json'));
    expect(roomOf(k)).toBe('chat/1');
    expect(roomOf(roomKey('we/ird:1', 'x'))).toBe('x');
    expect(tenantOf(roomKey('we/ird:1', 'x'))).toBe('we/ird:1');
    expect(roomOf(roomKey('12:34', 'a:b/c'))).toBe('a:b/c');
  });
});

describe('permission patterns', () => {
  const p = compilePermissions(['join:chat/*', 'publish:chat/42', 'presence:lobby/**', '*:team/a', 'bogus', 'join:', 'join:a/**/b', 'fly:x']);
  it('* matches one segment', () => {
    expect(p.can('join', 'chat/1')).toBe(true);
    expect(p.can('join', 'chat/1/2')).toBe(false);
    expect(p.can('join', 'chat')).toBe(false);
  });
  it('literals match exactly', () => {
    expect(p.can('publish', 'chat/42')).toBe(true);
    expect(p.can('publish', 'chat/43')).toBe(false);
    expect(p.can('publish', 'chat/420')).toBe(false);
  });
  it('a trailing ** matches one or more segments', () => {
    expect(p.can('presence', 'lobby/a')).toBe(true);
    expect(p.can('presence', 'lobby/a/b/c')).toBe(true);
    expect(p.can('presence', 'lobby')).toBe(false);
  });
  it('the * action grants join, publish and presence', () => {
    expect(p.can('join', 'team/a') && p.can('publish', 'team/a') && p.can('presence', 'team/a')).toBe(true);
  });
  it('actions do not leak into each other, and malformed entries grant nothing', () => {
    expect(p.can('publish', 'chat/1')).toBe(false);
    expect(p.can('join', 'a/x/b')).toBe(false);
    expect(compilePermissions(['bogus', 'join:', 'fly:x', 'join:a/**/b', 'join:ch.t']).can('join', 'chxt')).toBe(false);
  });
  it('*:** grants everything; no permissions grant nothing', () => {
    expect(compilePermissions(['*:**']).can('publish', 'any/room/at/all')).toBe(true);
    expect(compilePermissions([]).can('join', 'x')).toBe(false);
  });
  it('dots are literal', () => {
    const q = compilePermissions(['join:a.b']);
    expect(q.can('join', 'a.b')).toBe(true);
    expect(q.can('join', 'axb')).toBe(false);
  });
});
