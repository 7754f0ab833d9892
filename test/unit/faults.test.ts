import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FaultReporter } from '../../src/observability/faults.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

describe('FaultReporter', () => {
  it('counts every failure by where; logs at most N a second with the stack, then says how many it suppressed', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => { lines.push(...c.toString().split('\n').filter(Boolean)); cb(); } });
    const metrics = new Metrics();
    let t = 1_000_000;
    const f = new FaultReporter(metrics, createLogger('info', sink), 3, () => t);
    for (let i = 0; i < 10; i++) f.report('message', new Error(`e${i}`));
    expect(metrics.internalErrors.get('message')).toBe(10);
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0]!)).toMatchObject({ where: 'message', msg: 'internal error contained', err: { message: 'e0' } });
    expect(JSON.parse(lines[0]!).err.stack).toContain('e0');
    t += 1000;
    f.report('close', 'not an error object');
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[3]!)).toMatchObject({ where: 'close', suppressed: 7, err: { message: 'not an error object' } });
  });

  it('never throws, even when the logger does', () => {
    const metrics = new Metrics();
    const broken = { error: () => { throw new Error('disk full'); } } as never;
    expect(() => new FaultReporter(metrics, broken).report('x', new Error('y'))).not.toThrow();
    expect(metrics.internalErrors.get('x')).toBe(1);
  });
});
