// fast-check arbitraries for wsgate's hostile inputs, for property tests and the fuzzer alike:
// nesting to the frame limit, a byte-level MessagePack writer (every format family, lying lengths,
// every extension type), JSON text edge cases, Unicode edge strings, room and permission strings
// with every separator, edge-case claims and token transports, tenant and permission collision
// pairs. They live in scripts/fuzz/ so that the built fuzzer (npm run fuzz) can use them too.
//
//   import fc from 'fast-check';
//   import { MSGPACK, mpDeep, requestFrame } from '../helpers/arbitraries.js';
//   fc.assert(fc.property(requestFrame(MSGPACK, { payload: mpDeep(65536) }), (f) => { ... f.bytes ... }));
export * from '../../scripts/fuzz/arbitraries.js';
export { encodeMp, wtf8, hex, str, int, arr, map, obj, ext, nil, type Mp } from '../../scripts/fuzz/msgpack.js';
export { encodeJs, jstr, jarr, jobj, lit, isUtf8, type Js } from '../../scripts/fuzz/json.js';
export { permits, roomIsValid } from '../../scripts/fuzz/model.js';
