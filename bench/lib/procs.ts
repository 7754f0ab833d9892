// Child processes of the bench: servers under test and generator workers, each started through
// `sh -c 'ulimit -n …; exec node …'` so big connection counts get a raised file-descriptor limit
// (the process keeps the pid: exec replaces the shell). Also samples /proc for CPU and RSS.
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

let clkTck = 0;
export interface ProcSample {
  /** user+system CPU time, ms */
  cpuMs: number;
  rssBytes: number;
}

export function sampleProc(pid: number): ProcSample | undefined {
  try {
    if (clkTck === 0) clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / clkTck;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpuMs, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return undefined;
  }
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
