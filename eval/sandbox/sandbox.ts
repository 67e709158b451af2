import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeCapabilities, type SandboxCapabilities, sandboxUid } from './capabilities.ts';
import { classify } from './classify.ts';
import { killQuietly, processesInGroupOrUid, processesWithMarker, SANDBOX_ENV } from './procs.ts';
import { DEFAULT_LIMITS, type SandboxLimits, type SandboxResult } from './types.ts';

const PREAMBLE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'preamble.py'), 'utf8');
const PROGRAM_NAME = 'candidate.py';

export interface SandboxRunOptions {
  limits?: Partial<SandboxLimits>;
  /** Concurrency slot (0..n-1): selects the private uid when privileges are dropped. */
  slot?: number;
  /** Interpreter to use (default python3); see probeCapabilities. */
  python?: string;
  capabilities?: SandboxCapabilities;
  /** Parent of the per-run temporary directory (default: the OS temporary directory). */
  tmpRoot?: string;
  /** Install the Python audit hook (default true); off only to test what the OS layers enforce alone. */
  auditHook?: boolean;
}

/** Keep the first `max` bytes of a stream, remember whether more came. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  size = 0;
  overflow = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - this.size;
    if (b.length > room) this.overflow = true;
    if (room > 0) {
      const part = b.length > room ? b.subarray(0, room) : b;
      this.chunks.push(part);
      this.size += part.length;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * Run one Python program in the sandbox and report whether it passed. Never throws for anything the
 * program does; every process it started is killed and reaped before this resolves.
 */
export async function runInSandbox(program: string, opts: SandboxRunOptions = {}): Promise<SandboxResult> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const caps = opts.capabilities ?? probeCapabilities(opts.python);
  const slot = opts.slot ?? 0;
  const uid = caps.dropPrivileges ? sandboxUid(slot) : null;
  // RLIMIT_NPROC does not bind root: without a uid drop, root's candidates may not fork at all.
  const blockFork = uid === null && process.getuid?.() === 0;
  // The tmpfs must only ever be mounted inside the private mount namespace, never on the host.
  const tmpfs = caps.namespaces && caps.tmpfs;
  const sandboxId = randomBytes(12).toString('hex');
  const nonce = `__SDT_DONE_${randomBytes(16).toString('hex')}__`;
  const dir = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), 'sdt-sbx-'));
  const started = performance.now();
  try {
    await writeFile(join(dir, PROGRAM_NAME), program);
    if (uid !== null) {
      await chown(dir, uid, uid);
      await chmod(dir, 0o700);
    }
    const pythonArgs = ['-I', '-B', '-c', PREAMBLE];
    const [cmd, args] = caps.namespaces
      ? [
          'unshare',
          [
            ...(caps.userNamespace ? ['--user', '--map-root-user'] : []),
            '--net',
            '--pid',
            '--fork',
            '--kill-child',
            ...(tmpfs ? ['--mount', '--propagation', 'private'] : []),
            caps.python,
            ...pythonArgs,
          ],
        ]
      : [caps.python, pythonArgs];
    const env = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: dir,
      TMPDIR: dir,
      LANG: 'C.UTF-8',
      [SANDBOX_ENV]: sandboxId,
    };
    const child = spawn(cmd, args as string[], {
      cwd: dir,
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pgid = child.pid ?? null;
    const out = new CappedBuffer(limits.maxOutputBytes);
    const err = new CappedBuffer(limits.maxOutputBytes);
    let timedOut = false;
    let overflow = false;
    const killGroup = () => {
      if (pgid !== null) killQuietly(-pgid);
    };
    const onData = (buf: CappedBuffer) => (b: Buffer) => {
      buf.push(b);
      if (buf.overflow && !overflow) {
        overflow = true;
        killGroup();
      }
    };
    child.stdout.on('data', onData(out));
    child.stderr.on('data', onData(err));
    child.stdin.on('error', () => {}); // the program may exit before reading its configuration
    child.stdin.end(
      `${JSON.stringify({ dir, program: PROGRAM_NAME, nonce, uid, limits, readRoots: [], blockFork, tmpfs, auditHook: opts.auditHook ?? true })}\n`,
    );
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, limits.timeoutMs);
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // 'exit', not 'close': a straggler holding the pipes would otherwise keep us waiting past the limit.
    const { code, signal } = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.on('error', (e) => {
        err.push(Buffer.from(`\nsandbox: cannot start ${cmd}: ${e.message}\n`));
        resolve({ code: null, signal: null });
      });
      child.on('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    clearTimeout(timer);
    await reap(pgid, uid, sandboxId);
    await closed;
    const stdout = out.text();
    const stderr = err.text();
    const verdict = classify({
      exitCode: code,
      signal,
      timedOut,
      outputOverflow: overflow,
      completed: stdout.includes(nonce),
      stderr,
    });
    return {
      ...verdict,
      exitCode: code,
      signal,
      durationMs: performance.now() - started,
      stdout: stdout.replace(`\n${nonce}\n`, ''),
      stderr,
      sandboxId,
      pgid,
    };
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Kill whatever the run left behind and wait until it is gone. With a PID namespace the kernel kills
 * everything once its first process dies; without one, a process that left the group (setsid) is found
 * by its uid or by the marker in its environment. Zombies count as gone: they hold no resources and
 * their new parent reaps them.
 */
async function reap(pgid: number | null, uid: number | null, sandboxId: string): Promise<void> {
  if (pgid !== null) killQuietly(-pgid);
  for (let round = 0; round < 200; round++) {
    const left = [...processesInGroupOrUid(pgid, uid), ...processesWithMarker(sandboxId)].filter(
      (p) => p.state !== 'Z',
    );
    if (left.length === 0) return;
    for (const p of left) killQuietly(p.pid);
    await new Promise((r) => setTimeout(r, 10));
  }
}
