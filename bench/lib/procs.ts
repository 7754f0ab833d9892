// Child processes of the bench: servers under test and generator workers, each started through
// `sh -c 'ulimit -n …; exec node …'` so big connection counts get a raised file-descriptor limit
// (the process keeps the pid: exec replaces the shell). Also samples /proc for CPU and RSS, of one
// process or of a process tree (a supervisor and its workers).
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const FD_LIMIT = 1_048_576;

/** The file-descriptor limit a child actually gets (the hard limit when FD_LIMIT is refused). */
export function effectiveFdLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); ulimit -n`]).toString().trim());
  } catch {
    return 1024;
  }
}

export function spawnNode(script: string, args: string[], env: Record<string, string>, stdio: StdioOptions, nodeArgs: string[] = []): ChildProcess {
  const quoted = [process.execPath, ...nodeArgs, script, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${quoted}`], { env: { ...process.env, ...env }, stdio });
}

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** user+system CPU time, ms: live threads to the nanosecond (schedstat), reaped children from cutime/cstime */
  cpuMs: number;
  rssBytes: number;
  /** anonymous resident memory (heaps, native allocations; RSS less mapped files and shared memory) */
  rssAnonBytes: number;
  /** processes sampled (1, or the size of the process tree) */
  procs: number;
}

function readStat(pid: number): { ppid: number; ticks: number; childTicks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/**
 * CPU time of one process's live threads in ns, from /proc/<pid>/task/<tid>/schedstat: /proc/<pid>/stat
 * counts in clock ticks (10 ms), too coarse for a few thousand 100-µs upgrades. undefined: no schedstat.
 */
function threadsCpuNs(pid: number): number | undefined {
  let ns = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited meanwhile (or no schedstat: then every read fails)
    }
  }
  return ns > 0 ? ns : undefined;
}

/** pid -> child pids, from /proc/<pid>/task/<tid>/children where the kernel has it (CONFIG_PROC_CHILDREN), else from every /proc/<pid>/stat's ppid. */
type Children = (pid: number) => number[];

function childrenOf(): Children {
  try {
    readdirSync(`/proc/${process.pid}/task`).forEach((t) => readFileSync(`/proc/${process.pid}/task/${t}/children`));
    return (pid) => {
      const out: number[] = [];
      try {
        for (const t of readdirSync(`/proc/${pid}/task`)) {
          for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
        }
      } catch {
        // the process or a thread exited meanwhile
      }
      return out;
    };
  } catch {
    const map = new Map<number, number[]>();
    for (const d of readdirSync('/proc')) {
      const pid = Number(d);
      if (!Number.isInteger(pid)) continue;
      const s = readStat(pid);
      if (s) map.set(s.ppid, [...(map.get(s.ppid) ?? []), pid]);
    }
    return (pid) => map.get(pid) ?? [];
  }
}

/** `root` and all its descendants. */
export function processTree(root: number, children: Children = childrenOf()): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...children(tree[i]!));
  return tree;
}

function sumOf(pids: readonly number[]): ProcSample | undefined {
  const total: ProcSample = { cpuMs: 0, rssBytes: 0, rssAnonBytes: 0, procs: 0 };
  for (const p of pids) {
    const stat = readStat(p);
    if (!stat) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${p}/status`, 'utf8');
    } catch {
      continue;
    }
    const ns = threadsCpuNs(p);
    total.cpuMs += (ns !== undefined ? ns / 1e6 : (stat.ticks * 1000) / CLK_TCK) + (stat.childTicks * 1000) / CLK_TCK;
    total.rssBytes += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    total.rssAnonBytes += Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    total.procs++;
  }
  return total.procs > 0 ? total : undefined;
}

/** One process alone. undefined: it is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  return sumOf([pid]);
}

/**
 * Each root with all its descendants, summed per root (a supervisor and its worker processes are
 * one server). RSS is summed too: pages shared between the processes count once per process.
 */
export function sampleTrees(roots: readonly number[]): Array<ProcSample | undefined> {
  const children = childrenOf();
  return roots.map((r) => sumOf(processTree(r, children)));
}

/** Each process of `root`'s tree on its own (a supervisor first, then its workers). */
export function sampleTreeProcs(root: number): Array<{ pid: number; sample: ProcSample }> {
  return processTree(root).flatMap((pid) => {
    const sample = sumOf([pid]);
    return sample ? [{ pid, sample }] : [];
  });
}

export function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1]!.trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The kernel's count of connections dropped because a listen queue was full (TcpExt ListenOverflows). */
export function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    return Number(values[names.indexOf('ListenOverflows')] ?? 0);
  } catch {
    return 0;
  }
}
