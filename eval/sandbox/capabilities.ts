import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';

/**
 * What this machine lets the sandbox enforce. Probed once per process and per interpreter, because
 * containers differ: `unshare` may be refused, and a root-only interpreter (e.g. under /root/.pyenv) cannot
 * be used after dropping privileges.
 */
export interface SandboxCapabilities {
  /** Absolute path of the interpreter the candidates run under. */
  python: string;
  /** `unshare --net --pid --fork --kill-child` works: no network interfaces but lo (down) and a PID
   * namespace whose processes the kernel kills when its first process exits. */
  namespaces: boolean;
  /** Not root: the namespaces need a user namespace too (`--user --map-root-user`). */
  userNamespace: boolean;
  /** Started as root and the interpreter works under an unprivileged uid: candidates run as that uid. */
  dropPrivileges: boolean;
  /** A private mount namespace where a size-limited tmpfs can be mounted on the work directory. */
  tmpfs: boolean;
}

/** First uid used for sandboxes; each concurrent slot of each harness process gets its own uid. */
const UID_BASE = 200_000;
const UID_SPAN = 800_000;

/** A uid private to (this process, slot), so RLIMIT_NPROC of one sandbox never counts another's. */
export function sandboxUid(slot: number): number {
  return UID_BASE + ((process.pid * 64 + slot) % UID_SPAN);
}

const cache = new Map<string, SandboxCapabilities>();

function runs(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 15_000, env: { PATH: process.env.PATH ?? '' } });
  return r.status === 0;
}

function canMountTmpfs(userNamespace: boolean): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'sdt-probe-'));
  try {
    // The mount lives in a private mount namespace and disappears with it.
    const user = userNamespace ? ['--user', '--map-root-user'] : [];
    return runs('unshare', [
      ...user,
      '--mount',
      '--propagation',
      'private',
      'mount',
      '-t',
      'tmpfs',
      '-o',
      'size=1m',
      'tmpfs',
      dir,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function resolveInterpreter(python: string): string | null {
  const r = spawnSync(python, ['-I', '-c', 'import sys; print(sys.executable)'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (r.status !== 0) return null;
  const exe = r.stdout.trim();
  return exe.length > 0 ? exe : null;
}

function worksUnprivileged(python: string): boolean {
  const uid = sandboxUid(63);
  // Imports after the drop read the standard library as that uid, as a candidate will.
  const code = `import os; os.setgroups([]); os.setgid(${uid}); os.setuid(${uid}); import fractions, decimal, statistics, json`;
  return runs(python, ['-I', '-c', code]);
}

/**
 * Probe the machine. `python` is the requested interpreter (default "python3"); when privileges can be
 * dropped but that interpreter is unreadable to other users, /usr/bin/python3 is tried before giving up on
 * the uid drop.
 */
export function probeCapabilities(python = 'python3'): SandboxCapabilities {
  const hit = cache.get(python);
  if (hit) return hit;
  const exe = resolveInterpreter(python);
  if (!exe) {
    throw new UserError(
      `sandbox: cannot run the interpreter ${JSON.stringify(python)}; install python3 or pass --python PATH.`,
    );
  }
  const nsArgs = ['--net', '--pid', '--fork', '--kill-child', 'true'];
  let namespaces = runs('unshare', nsArgs);
  let userNamespace = false;
  if (!namespaces && process.getuid?.() !== 0) {
    // Unprivileged: a user namespace grants the rights to make the others (where the kernel allows it).
    userNamespace = runs('unshare', ['--user', '--map-root-user', ...nsArgs]);
    namespaces = userNamespace;
  }
  let chosen = exe;
  let dropPrivileges = false;
  if (process.getuid?.() === 0) {
    if (worksUnprivileged(exe)) dropPrivileges = true;
    else if (python === 'python3') {
      const system = resolveInterpreter('/usr/bin/python3');
      if (system && worksUnprivileged(system)) {
        chosen = system;
        dropPrivileges = true;
      }
    }
  }
  const caps = {
    python: chosen,
    namespaces,
    userNamespace,
    dropPrivileges,
    tmpfs: namespaces && canMountTmpfs(userNamespace),
  };
  cache.set(python, caps);
  return caps;
}

export function describeCapabilities(c: SandboxCapabilities): string {
  return [
    `interpreter ${c.python}`,
    c.namespaces ? 'network+PID namespace' : 'no namespaces (Python hooks only for network)',
    c.dropPrivileges ? 'unprivileged uid per slot' : 'same uid as the harness',
    c.tmpfs ? 'size-limited tmpfs work directory' : 'work directory on the host disk',
  ].join(', ');
}
