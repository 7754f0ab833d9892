// Prints the example section of docs/PROTOCOL.md: every message in JSON and as MessagePack hex,
// both produced by the gateway's own codec. test/unit/docs.test.ts checks each pair agrees.
import { encodeJson, encodeMsgpack } from '../src/protocol/codec.js';
import type { ClientRequest, ServerMessage } from '../src/protocol/messages.js';

const examples: Array<[string, string, ClientRequest | ServerMessage]> = [
  ['join', 'client → server', { id: 1, type: 'join', rooms: ['chat/42', 'lobby'] }],
  ['leave', 'client → server', { id: 2, type: 'leave', rooms: ['lobby'] }],
  ['publish', 'client → server', { id: 3, type: 'publish', room: 'chat/42', data: { text: 'hi' }, echo: false }],
  ['presence', 'client → server', { id: 4, type: 'presence', room: 'chat/42' }],
  ['token:refresh', 'client → server', { id: 5, type: 'token:refresh', token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' }],
  ['ping', 'client → server', { id: 6, type: 'ping' }],
  ['connected', 'server → client, first frame', { type: 'connected', connectionId: 'gw-1.1a', user: 'alice', tenant: 'acme', exp: 1767225600, permissions: ['join:chat/*', 'publish:chat/*'], node: 'gw-1', protocol: 'wsgate.v1.json' }],
  ['ack (join)', 'server → client, reply', { type: 'ack', ref: 1, result: { rooms: ['chat/42', 'lobby'] } }],
  ['ack (publish)', 'server → client, reply', { type: 'ack', ref: 3, result: { ts: 1767225000123 } }],
  ['ack (presence)', 'server → client, reply', { type: 'ack', ref: 4, result: { room: 'chat/42', users: ['alice', 'bob'] } }],
  ['token:refreshed', 'server → client, reply', { type: 'token:refreshed', ref: 5, exp: 1767229200, permissions: ['join:chat/*'], left: ['lobby'] }],
  ['error', 'server → client, reply error', { type: 'error', ref: 5, code: 'USER_MISMATCH', message: 'User mismatch' }],
  ['message', 'server → client, push', { type: 'message', room: 'chat/42', data: { text: 'hi' }, from: 'bob', ts: 1767225000123 }],
  ['presence', 'server → client, push', { type: 'presence', room: 'chat/42', joined: ['carol'], left: [] }],
  ['presence (counts)', 'server → client, push', { type: 'presence', room: 'chat/42', joined: [], left: [], counts: { joined: 120, left: 3 } }],
  ['token:expiring', 'server → client, push', { type: 'token:expiring', exp: 1767225600, in: 60 }],
];

const hex = (b: Buffer): string => (b.toString('hex').match(/.{1,2}/g) ?? []).join(' ').replace(/((?:\S\S ){31}\S\S) /g, '$1\n');
for (const [name, dir, msg] of examples) {
  process.stdout.write(`#### \`${name}\` (${dir})\n\n\`\`\`json\n${encodeJson(msg)}\n\`\`\`\n\n\`\`\`msgpack-hex\n${hex(encodeMsgpack(msg))}\n\`\`\`\n\n`);
}
