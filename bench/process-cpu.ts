/**
 * CPU time and memory of the processes a bench row depends on, read from /proc (Linux): the
 * service (its primary and every cluster worker), PostgreSQL (the postmaster and every backend) and
 * the load generator (this process). A row's "CPU ms per request" is the CPU time each group used
 * during the row divided by the requests it answered, so the table itself says where the distance
 * to the signing ceiling goes.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, in ticks. */
  self: number;
  /** cutime + cstime: children it has waited for (exited backends of the postmaster), in ticks. */
  reaped: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const n = (field: number) => Number(fields[field - 3]);
  return { pid, ppid: n(4), self: n(14) + n(15), reaped: n(16) + n(17) };
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The process `root` and its descendants. */
function tree(root: number, stats: ProcStat[]): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const s of stats) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s]);
  const out: ProcStat[] = [];
  const stack = stats.filter((s) => s.pid === root);
  while (stack.length > 0) {
    const s = stack.pop()!;
    out.push(s);
    stack.push(...(byParent.get(s.pid) ?? []));
  }
  return out;
}

/** CPU seconds used so far by `root` and its descendants, including those already exited and reaped. */
function treeCpuSeconds(root: number, stats: ProcStat[]): number {
  const members = tree(root, stats);
  const rootStat = members.find((s) => s.pid === root);
  // Live descendants count themselves; exited ones are in their parent's reaped time.
  const ticks = members.reduce((sum, s) => sum + s.self, 0) + (rootStat?.reaped ?? 0);
  return ticks / TICKS_PER_SECOND;
}

export interface CpuGroups {
  /** The service's process (the cluster primary under WORKERS > 1). */
  service?: number;
  /** The postmaster. */
  postgres?: number;
}

export interface CpuSnapshot {
  service: number;
  postgres: number;
  loadGenerator: number;
}

export function cpuSnapshot(groups: CpuGroups): CpuSnapshot {
  const stats = allStats();
  const own = process.cpuUsage();
  return {
    service: groups.service ? treeCpuSeconds(groups.service, stats) : NaN,
    postgres: groups.postgres ? treeCpuSeconds(groups.postgres, stats) : NaN,
    loadGenerator: (own.user + own.system) / 1e6,
  };
}

/** CPU milliseconds per request of each group between two snapshots. */
export interface CpuPerRequest {
  service: number;
  postgres: number;
  loadGenerator: number;
}

export function cpuPerRequest(before: CpuSnapshot, after: CpuSnapshot, requests: number): CpuPerRequest {
  const per = (a: number, b: number) => (requests > 0 ? Math.round(((b - a) * 1000 * 1000) / requests) / 1000 : NaN);
  return {
    service: per(before.service, after.service),
    postgres: per(before.postgres, after.postgres),
    loadGenerator: per(before.loadGenerator, after.loadGenerator),
  };
}

/** Peak resident set (VmHWM) of each process of the tree, in MiB. */
export function peakRssMiB(root: number): { pid: number; peakMiB: number }[] {
  return tree(root, allStats()).map(({ pid }) => {
    let kib = NaN;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib = Number(m[1]);
    } catch {
      /* exited */
    }
    return { pid, peakMiB: Math.round(kib / 1024) };
  });
}
