import { readdirSync, readFileSync } from 'node:fs';

/** The environment variable that tags every process a sandbox run starts. */
export const SANDBOX_ENV = 'SDT_SANDBOX_ID';

export interface ProcInfo {
  pid: number;
  pgid: number;
  uid: number;
  comm: string;
  /** One letter, as in ps: R, S, D, Z (zombie), T... */
  state: string;
}

function readProc(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is parenthesised and may hold spaces or parentheses: split after the last ')'.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uidLine = /^Uid:\s+(\d+)/m.exec(status);
    return {
      pid,
      pgid: Number(fields[2]),
      uid: uidLine ? Number(uidLine[1]) : -1,
      comm: stat.slice(stat.indexOf('(') + 1, close),
      state: fields[0],
    };
  } catch {
    return null; // it exited while we looked
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Live processes whose environment carries SDT_SANDBOX_ID=id (zombies have no environment). */
export function processesWithMarker(id: string): ProcInfo[] {
  const needle = Buffer.from(`${SANDBOX_ENV}=${id}\0`);
  const out: ProcInfo[] = [];
  for (const pid of allPids()) {
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (env.includes(needle)) {
      const info = readProc(pid);
      if (info) out.push(info);
    }
  }
  return out;
}

/** Processes in process group `pgid`, or owned by `uid` when given. */
export function processesInGroupOrUid(pgid: number | null, uid: number | null): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const pid of allPids()) {
    const info = readProc(pid);
    if (!info) continue;
    if ((pgid !== null && info.pgid === pgid) || (uid !== null && info.uid === uid)) out.push(info);
  }
  return out;
}

export function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
