import { describe, expect, it } from 'vitest';
import { FreshShared } from '../../src/core/fresh-shared.js';

describe('FreshShared', () => {
  it('callers who ask while a reading is pending share it; each gets a reading that started after it asked', async () => {
    let reads = 0;
    let release: (() => void) | undefined;
    const f = new FreshShared(async () => {
      const n = ++reads;
      await new Promise<void>((r) => (release = r));
      return n;
    }, 0);
    const a = f.get();
    const b = f.get(); // before the first reading started: the same one
    await new Promise((r) => setTimeout(r, 5));
    expect(reads).toBe(1);
    const c = f.get(); // asked while reading 1 runs: waits for reading 2
    const d = f.get();
    release!();
    expect(await a).toBe(1);
    expect(await b).toBe(1);
    await new Promise((r) => setTimeout(r, 5));
    expect(reads).toBe(2);
    release!();
    expect(await c).toBe(2);
    expect(await d).toBe(2);
  });

  it('starts readings at most once per interval however many ask', async () => {
    let t = 0;
    const slept: number[] = [];
    let reads = 0;
    const f = new FreshShared(() => ++reads, 250, () => t, async (ms) => {
      slept.push(ms);
      t += ms;
    });
    expect(await f.get()).toBe(1);
    t += 10;
    const all = await Promise.all([f.get(), f.get(), f.get()]);
    expect(all).toEqual([2, 2, 2]);
    expect(slept).toEqual([240]);
    t += 1000;
    expect(await f.get()).toBe(3);
    expect(slept).toEqual([240]);
  });

  it('a failed reading fails its callers only; the next one runs', async () => {
    let n = 0;
    const f = new FreshShared(() => {
      if (++n === 1) throw new Error('boom');
      return n;
    }, 0);
    await expect(f.get()).rejects.toThrow('boom');
    expect(await f.get()).toBe(2);
  });
});
