// The package as a user gets it after `npm run build` (npm test builds first): `wsgate/client`
// resolves to the Node entry in Node and to the browser entry under the browser condition, and a
// strict TypeScript project type-checks against the emitted declarations, by either resolution.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/build-client.js';

const run = promisify(execFile);
const consumer = join(ROOT, '.tmp', `consumer-${process.pid}`); // inside the package, so `wsgate/client` self-resolves
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

const probe = `import('wsgate/client').then((m) => console.log(JSON.stringify({ connect: typeof m.connect, nodeSocket: typeof m.nodeSocket, error: typeof m.WsgateError })))`;

describe('wsgate/client', () => {
  it('resolves to the Node entry (ws) in Node, and to the browser entry under the browser condition', async () => {
    const node = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT });
    expect(JSON.parse(node.stdout)).toEqual({ connect: 'function', nodeSocket: 'function', error: 'function' });
    const browser = await run(process.execPath, ['--conditions=browser', '--input-type=module', '-e', probe], { cwd: ROOT });
    expect(JSON.parse(browser.stdout)).toEqual({ connect: 'function', nodeSocket: 'undefined', error: 'function' });
  });

  it('type-checks a strict consumer against the emitted declarations (NodeNext and Bundler resolution)', async () => {
    mkdirSync(consumer, { recursive: true });
    writeFileSync(
      join(consumer, 'use.ts'),
      `import { connect, WsgateError, type RoomMessage, type StateChange, type TokenRefreshedMessage } from 'wsgate/client';
const c = connect({ url: 'ws://localhost:8080/ws', getToken: async () => 't', encoding: 'json', offline: 'fail', reconnect: { maxAttempts: 5 } });
c.on('message', (m: RoomMessage) => m.room.toUpperCase());
c.on('state', (s: StateChange) => s.state === 'reconnecting' && s.attempt);
c.on('error', (e: WsgateError) => e.code === 'FORBIDDEN' || e.code === 'QUEUE_FULL');
const ts: Promise<number> = c.publish('chat/1', { any: 'data' }).then((a) => a.ts);
const users: Promise<readonly string[]> = c.request({ type: 'presence', room: 'chat/1' }).then((p) => p.users);
const refreshed: Promise<TokenRefreshedMessage> = c.request({ type: 'token:refresh', token: 't' });
// @ts-expect-error not a request type
void c.request({ type: 'subscribe', room: 'x' });
// @ts-expect-error a join takes rooms
void c.request({ type: 'join', room: 7 });
// @ts-expect-error no such event
c.on('messages', () => undefined);
// @ts-expect-error encodings are msgpack or json
connect({ url: '', getToken: () => '', encoding: 'xml' });
void ts; void users; void refreshed;
`,
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const check = async (module: string, resolution: string): Promise<string> => {
      const config = { compilerOptions: { module, moduleResolution: resolution, target: 'ES2022', strict: true, noEmit: true, types: [], lib: ['ES2022', 'DOM'], skipLibCheck: false }, files: ['use.ts'] };
      writeFileSync(join(consumer, `tsconfig.${resolution}.json`), JSON.stringify(config));
      const out = await run(process.execPath, [tsc, '-p', join(consumer, `tsconfig.${resolution}.json`)], { cwd: ROOT }).catch((e: { stdout: string }) => e);
      return out.stdout;
    };
    expect(await Promise.all([check('NodeNext', 'NodeNext'), check('ESNext', 'Bundler')])).toEqual(['', '']);
  });
});
