// How many workers `WSGATE_WORKERS=auto` means: the cores this process may run on. Node's
// availableParallelism() reads the affinity mask only; a container limited by a CPU quota
// (docker --cpus=2 on a 64-core host) would otherwise start 64 workers on 2 cores' worth of time.
// The cgroup quota is read too (v2: /sys/fs/cgroup/cpu.max "200000 100000"; v1: cfs_quota_us and
// cfs_period_us), rounded up, as Go 1.25's GOMAXPROCS does.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Cores allowed by a CFS quota, or undefined when there is none. */
export function quotaCores(cpuMaxV2: string | undefined, quotaV1?: string, periodV1?: string): number | undefined {
  if (cpuMaxV2 !== undefined) {
    const [quota, period] = cpuMaxV2.split(/\s+/);
    if (quota === undefined || quota === 'max') return undefined;
    const q = Number(quota);
    const p = Number(period ?? 100000);
    return q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : undefined;
  }
  if (quotaV1 !== undefined && periodV1 !== undefined) {
    const q = Number(quotaV1);
    const p = Number(periodV1);
    return q > 0 && p > 0 ? Math.max(1, Math.ceil(q / p)) : undefined;
  }
  return undefined;
}

/** The cores this process may use: the affinity mask, capped by the cgroup's CPU quota. */
export function availableCores(): number {
  const affinity = availableParallelism();
  const quota = quotaCores(read('/sys/fs/cgroup/cpu.max'), read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return Math.max(1, Math.min(affinity, quota ?? affinity));
}

/** WSGATE_WORKERS resolved: a number as given, `auto` as availableCores(). */
export function workerCount(workers: number | 'auto', cores: () => number = availableCores): number {
  return workers === 'auto' ? cores() : workers;
}
