// Refused upgrades in the log: sampled, with what an operator needs and nothing of the token.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logBindings } from '../../src/observability/logger.js';
import { RefusalLog } from '../../src/observability/refusals.js';

function sink(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write: (c: Buffer, _e, cb) => { for (const l of c.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  return { lines, stream };
}

describe('RefusalLog', () => {
  it('logs at most N refusals a second; the next line says how many were left out', () => {
    const { lines, stream } = sink();
    let t = 5_000_000;
    const log = new RefusalLog(createLogger('info', stream, logBindings({ nodeId: 'n1' })), 4, () => t);
    for (let i = 0; i < 100; i++) log.upgrade('AUTH_FAILED', 401, 'expired', `10.0.0.${i}`, 'header');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ node: 'n1', msg: 'upgrade refused', code: 'AUTH_FAILED', status: 401, reason: 'expired', address: '10.0.0.0', source: 'header' });
    expect(lines[0]).not.toHaveProperty('suppressed');
    t += 999;
    log.socket('pending-address', '10.0.0.9');
    expect(lines).toHaveLength(4);
    t += 1;
    log.upgrade('ORIGIN_FORBIDDEN', 403, 'origin', '10.0.0.1', 'cookie', 'https://evil.example/' + 'x'.repeat(500));
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ code: 'ORIGIN_FORBIDDEN', source: 'cookie', suppressed: 97 });
    expect((lines[4]!.origin as string).length).toBe(200);
    log.socket('pending-total', '10.0.0.2');
    expect(lines[5]).toMatchObject({ msg: 'socket refused', reason: 'pending-total', address: '10.0.0.2' });
  });

  it('0 a second: none', () => {
    const { lines, stream } = sink();
    const log = new RefusalLog(createLogger('info', stream), 0);
    for (let i = 0; i < 10; i++) log.upgrade('NO_TOKEN', 401, 'no-token', '10.0.0.1', 'none');
    expect(lines).toHaveLength(0);
  });

  it('the worker joins the node in every line when the configuration has one', () => {
    const { lines, stream } = sink();
    createLogger('info', stream, logBindings({ nodeId: 'n1.2', worker: 2 })).info('hello');
    expect(lines[0]).toMatchObject({ node: 'n1.2', worker: 2, msg: 'hello' });
    expect(lines[0]).not.toHaveProperty('pid');
  });
});
