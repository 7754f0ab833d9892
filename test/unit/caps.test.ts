// The node's side of the deployment caps (core/caps.ts) over the embedded CapStore. One store
// answer is held back (the store decides at once, as Redis executes a script in order; only the
// answer reaches the node later), to put a rewrite between a reservation and its answer.
import { describe, expect, it } from 'vitest';
import type { Claims } from '../../src/auth/claims.js';
import { DeploymentCaps } from '../../src/core/caps.js';
import { MemoryCapStore } from '../../src/stores/memory/caps.js';
import type { CapStore, CapVerdict } from '../../src/stores/ports.js';

/** The embedded store whose reservation answers reach the node only when the test says so. */
class LateAnswers implements CapStore {
  readonly held: Array<() => void> = [];
  constructor(readonly inner: MemoryCapStore) {}
  reserve(nodeId: string, tenant: string, user: string): Promise<CapVerdict> {
    const v = this.inner.reserve(nodeId, tenant, user);
    return new Promise((resolve) => this.held.push(() => resolve(v)));
  }
  release(nodeId: string, tenant: string, user: string): Promise<boolean> {
    return this.inner.release(nodeId, tenant, user);
  }
  refresh(nodeId: string, tenants: readonly string[]): Promise<{ lost: readonly string[]; all: boolean }> {
    return this.inner.refresh(nodeId, tenants);
  }
  rewrite(nodeId: string, counts: ReadonlyMap<string, ReadonlyMap<string, number>>): Promise<void> {
    return this.inner.rewrite(nodeId, counts);
  }
  removeNode(nodeId: string, tenants: readonly string[]): Promise<void> {
    return this.inner.removeNode(nodeId, tenants);
  }
}

const dora = { sub: 'dora', tenantId: 't' } as Claims;

describe('deployment caps, the node side', () => {
  it('a reservation refused while a rewrite that counted it was computed gets the tenant rewritten again: no lasting overcount', async () => {
    const memory = new MemoryCapStore(2, 0, 30);
    const late = new LateAnswers(memory);
    const n1 = new DeploymentCaps(late, 'n1', 1);
    const n2 = new DeploymentCaps(memory, 'n2', 1);
    const first = n1.reserve(dora) as Promise<unknown>;
    late.held.shift()!();
    expect(await first).toBeUndefined();
    expect(n2.reserve(dora)).toBeUndefined(); // dora holds 2: the cap
    await n1.flush(); // n1's first heartbeat
    const refused = n1.reserve(dora) as Promise<{ code: string } | undefined>; // the store refuses it (dora is at 2); the answer is held
    // the store forgets n1 (it expired, as after a stall): n1's next refresh rewrites its tenants
    (memory as unknown as { nodes: Map<string, { expiresAt: number }> }).nodes.get('n1')!.expiresAt = 0;
    await n1.flush(); // the rewrite counts the unanswered reservation: dora = 2 on n1
    late.held.shift()!();
    expect((await refused)?.code).toBe('TOO_MANY_CONNECTIONS');
    await n1.flush(); // rewritten again without it
    n2.release('t', 'dora');
    await new Promise((r) => setImmediate(r));
    // dora holds 1 connection (n1's first): one more is allowed
    expect(memory.reserve('n3', 't', 'dora')).toBe('ok');
  });

  it('the first heartbeat of a node does not rewrite (its alive key cannot exist yet); later losses do', async () => {
    const memory = new MemoryCapStore(5, 0, 30);
    const rewrites: string[][] = [];
    const store: CapStore = Object.assign(Object.create(memory) as MemoryCapStore, {
      refresh: async () => ({ lost: [], all: true }),
      rewrite: async (_n: string, counts: ReadonlyMap<string, unknown>) => void rewrites.push([...counts.keys()]),
    });
    const n = new DeploymentCaps(store, 'n', 1);
    expect(n.reserve(dora)).toBeUndefined();
    await n.flush();
    expect(rewrites).toEqual([]);
    await n.flush();
    expect(rewrites).toEqual([['t']]);
  });
});
