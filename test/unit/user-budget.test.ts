// Budgets shared by a user's sockets on one node (core/user-budget.ts): pure, the time passed in.
import { describe, expect, it } from 'vitest';
import { UserBudgets } from '../../src/core/user-budget.js';

describe('user budgets', () => {
  it('room changes come out of one bucket per user (tenant + sub), refilled at the rate', () => {
    const b = new UserBudgets({ roomRate: 10, roomBurst: 20, presenceWaiting: 2 });
    expect(b.takeRooms('t', 'u', 15, 0)).toBe(true);
    expect(b.takeRooms('t', 'u', 6, 0)).toBe(false); // 5 left: nothing is taken
    expect(b.takeRooms('t', 'u', 5, 0)).toBe(true);
    expect(b.takeRooms('t', 'u', 1, 50)).toBe(false); // half a token after 50 ms
    expect(b.takeRooms('t', 'u', 1, 100)).toBe(true);
    // another user, and the same sub in another tenant, have buckets of their own
    expect(b.takeRooms('t', 'v', 20, 100)).toBe(true);
    expect(b.takeRooms('t2', 'u', 20, 100)).toBe(true);
    // a sub that would collide with a tenant/sub join of strings has its own bucket too
    expect(b.takeRooms('t\nu', '', 20, 100)).toBe(true);
  });

  it('presence requests waiting are counted per user and given back', () => {
    const b = new UserBudgets({ roomRate: 0, roomBurst: 1, presenceWaiting: 2 });
    expect([b.presenceEnter('t', 'u', 0), b.presenceEnter('t', 'u', 0), b.presenceEnter('t', 'u', 0)]).toEqual([true, true, false]);
    expect(b.presenceEnter('t', 'v', 0)).toBe(true);
    b.presenceLeave('t', 'u');
    expect(b.presenceEnter('t', 'u', 0)).toBe(true);
  });

  it('the sweep forgets users whose bucket is full again and who wait for nothing; unlimited rooms keep no state', () => {
    const b = new UserBudgets({ roomRate: 10, roomBurst: 20, presenceWaiting: 2 });
    b.takeRooms('t', 'u', 20, 0);
    b.presenceEnter('t', 'w', 0);
    b.takeRooms('t', 'x', 1, 0);
    b.sweep(1000); // u: 10 of 20 back, x full again, w waits
    expect(b.size).toBe(2);
    b.presenceLeave('t', 'w');
    b.sweep(2000);
    expect(b.size).toBe(0);
    const free = new UserBudgets({ roomRate: 0, roomBurst: 1, presenceWaiting: 2 });
    expect(free.takeRooms('t', 'u', 1_000_000, 0)).toBe(true);
    expect(free.size).toBe(0);
  });
});
