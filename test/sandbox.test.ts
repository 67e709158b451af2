import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../eval/paths.ts';
import { probeCapabilities } from '../eval/sandbox/capabilities.ts';
import { classify, lastException } from '../eval/sandbox/classify.ts';
import { SandboxPool } from '../eval/sandbox/pool.ts';
import { type ProcInfo, processesInGroupOrUid, processesWithMarker } from '../eval/sandbox/procs.ts';
import { runInSandbox } from '../eval/sandbox/sandbox.ts';
import type { SandboxResult } from '../eval/sandbox/types.ts';

// Short limits keep the hostile cases fast; the memory limit is low so the hog fails quickly.
const limits = { timeoutMs: 4000, cpuSeconds: 2, memoryBytes: 256 * 1024 * 1024, fileSizeBytes: 1 << 20 };
const caps = probeCapabilities();
const seen: SandboxResult[] = [];

async function run(program: string, opts: Parameters<typeof runInSandbox>[1] = {}): Promise<SandboxResult> {
  const r = await runInSandbox(program, { limits, capabilities: caps, ...opts });
  seen.push(r);
  return r;
}

afterEach(() => {
  // Every process a run started is gone once its promise resolved: none carries its marker, none is left
  // in its process group (a zombie is dead already: it only waits for its parent to collect its status).
  const alive = (ps: ProcInfo[]) => ps.filter((p) => p.state !== 'Z');
  // The work directory's tmpfs lives in the candidate's mount namespace only, never in the host's.
  expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain('sdt-sbx-');
  for (const r of seen.splice(0)) {
    expect(alive(processesWithMarker(r.sandboxId))).toEqual([]);
    expect(alive(processesInGroupOrUid(r.pgid, null))).toEqual([]);
  }
});

describe('sandbox: ordinary programs', () => {
  it('passes a program that imports the standard library and writes in its own directory', async () => {
    const r = await run(
      'import json, math, os, tempfile\n' +
        'open("notes.txt", "w").write("x")\n' +
        'assert open("notes.txt").read() == "x"\n' +
        'assert os.environ["HOME"] == os.getcwd() == os.environ["TMPDIR"]\n' +
        'with tempfile.TemporaryFile() as f: f.write(b"ok")\n' +
        'print(json.dumps(math.factorial(5)))\n',
    );
    expect(r.errorKind).toBeNull();
    expect(r.passed).toBe(true);
    expect(r.stdout.trim()).toBe('120');
  });

  it('reports a failing assert as a wrong answer, and a syntax error as such', async () => {
    const a = await run('def f():\n    return 1\nassert f() == 2, "f broken"\n');
    expect([a.passed, a.errorKind]).toEqual([false, 'assertion']);
    expect(a.error).toContain('f broken');
    const s = await run('def f(:\n    pass\n');
    expect([s.passed, s.errorKind]).toEqual([false, 'syntax']);
  });

  it('does not count os._exit(0) before the tests finish as a pass', async () => {
    const r = await run('import os\nos._exit(0)\nassert False\n');
    expect([r.passed, r.errorKind]).toEqual([false, 'early-exit']);
  });

  it('starts with a clean environment', async () => {
    process.env.SDT_TEST_SECRET = 'leak';
    try {
      const r = await run(
        'import os\nassert "SDT_TEST_SECRET" not in os.environ\nprint(sorted(os.environ))\n',
      );
      expect(r.passed).toBe(true);
    } finally {
      delete process.env.SDT_TEST_SECRET;
    }
  });
});

describe('sandbox: hostile candidates are contained and reported', () => {
  it('infinite loop: stopped by the CPU or wall-clock limit', async () => {
    const r = await run('while True:\n    pass\n');
    expect([r.passed, r.errorKind]).toEqual([false, 'timeout']);
  });

  it('sleeping forever: stopped by the wall-clock limit', async () => {
    const r = await run('import time\ntime.sleep(3600)\n', { limits: { ...limits, timeoutMs: 1000 } });
    expect([r.passed, r.errorKind]).toEqual([false, 'timeout']);
    expect(r.durationMs).toBeGreaterThanOrEqual(1000);
  });

  it('fork bomb: bounded by the process limit', async () => {
    const r = await run('import os\nwhile True:\n    os.fork()\n');
    expect(r.passed).toBe(false);
    expect(['process-limit', 'timeout']).toContain(r.errorKind);
  });

  it('memory hog: MemoryError under the address-space limit', async () => {
    const r = await run('a = []\nwhile True:\n    a.append(bytearray(8 * 1024 * 1024))\n');
    expect([r.passed, r.errorKind]).toEqual([false, 'memory']);
  });

  it('huge file write: stopped by the file-size limit', async () => {
    const r = await run('with open("big", "wb") as f:\n    while True:\n        f.write(b"x" * 65536)\n');
    expect([r.passed, r.errorKind]).toEqual([false, 'output-limit']);
  });

  it.skipIf(!caps.tmpfs)(
    'many files under the size limit: stopped by the work directory quota (tmpfs)',
    async () => {
      const r = await run('for i in range(64):\n    open(f"f{i}", "wb").write(b"x" * 900_000)\n', {
        limits: { ...limits, diskBytes: 8 * 1024 * 1024 },
      });
      expect([r.passed, r.errorKind]).toEqual([false, 'output-limit']);
      expect(r.error).toMatch(/No space left/);
    },
  );

  it('flood of stdout: stopped by the output cap', async () => {
    const r = await run('while True:\n    print("y" * 4096)\n', {
      limits: { ...limits, maxOutputBytes: 64 * 1024 },
    });
    expect([r.passed, r.errorKind]).toEqual([false, 'output-limit']);
    expect(r.stdout.length).toBeLessThanOrEqual(64 * 1024);
  });

  it('socket: refused, even when the candidate swallows the error', async () => {
    const r = await run('import socket\ns = socket.socket()\ns.connect(("1.1.1.1", 80))\n');
    expect([r.passed, r.errorKind]).toEqual([false, 'network']);
    const swallowed = await run(
      'import socket\ntry:\n    socket.create_connection(("127.0.0.1", 22), timeout=1)\nexcept Exception:\n    pass\n',
    );
    expect([swallowed.passed, swallowed.errorKind]).toEqual([false, 'network']);
  });

  it('reading or writing outside its directory: refused', async () => {
    const read = await run('print(open("/etc/passwd").read())\n');
    expect([read.passed, read.errorKind]).toEqual([false, 'fs']);
    expect(read.stdout).not.toContain('root:');
    const target = `/tmp/sdt-sandbox-escape-${process.pid}`;
    const write = await run(`open(${JSON.stringify(target)}, "w").write("pwned")\n`);
    expect([write.passed, write.errorKind]).toEqual([false, 'fs']);
    expect(existsSync(target)).toBe(false);
    const listing = await run('import os\nprint(os.listdir("/work"))\n');
    expect([listing.passed, listing.errorKind]).toEqual([false, 'fs']);
    const remove = await run('import os\nos.remove("/etc/hostname")\n');
    expect([remove.passed, remove.errorKind]).toEqual([false, 'fs']);
    rmSync(target, { force: true });
  });

  it('killing its parent or spawning processes: refused, and the harness lives on', async () => {
    const kill = await run('import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, 9)\n');
    expect([kill.passed, kill.errorKind]).toEqual([false, 'process']);
    // The harness's real pid (in a PID namespace getppid() is 0): were this not refused, this test would die.
    const direct = await run(`import os\nos.kill(${process.pid}, 9)\n`);
    expect([direct.passed, direct.errorKind]).toEqual([false, 'process']);
    const group = await run('import os, signal\nos.killpg(0, signal.SIGKILL)\n');
    expect([group.passed, group.errorKind]).toEqual([false, 'process']);
    const spawn = await run('import subprocess\nsubprocess.run(["sh", "-c", "kill -9 $PPID"])\n');
    expect([spawn.passed, spawn.errorKind]).toEqual([false, 'process']);
    const ffi = await run('import ctypes\nctypes.CDLL(None).kill(0, 9)\n');
    expect(ffi.passed).toBe(false);
    expect(process.pid).toBeGreaterThan(0); // still here
  });

  it('a child that leaves the process group is still killed', async () => {
    // The child calls setsid() and sleeps; the parent exits at once. Nothing may survive the run.
    const r = await run(
      'import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nelse:\n    time.sleep(0.3)\n',
    );
    expect(r.passed).toBe(true);
  });

  it('many candidates in parallel: hostile ones fail, the good ones still pass', async () => {
    const pool = new SandboxPool({ concurrency: 2, limits });
    const good = 'assert sum(range(10)) == 45\n';
    const programs = [good, 'while True: pass\n', good, 'import os\nwhile True: os.fork()\n', good];
    const results = await Promise.all(programs.map((p) => pool.run(p)));
    seen.push(...results);
    expect(results.map((r) => r.passed)).toEqual([true, false, true, false, true]);
  });
});

describe('sandbox: the OS layers alone (audit hook off)', () => {
  const osOnly = { auditHook: false };

  it.skipIf(!caps.namespaces)('the network namespace has no route out', async () => {
    const r = await run(
      'import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(("1.1.1.1", 80))\n',
      osOnly,
    );
    expect(r.passed).toBe(false);
    expect(r.error).toMatch(/Network is unreachable|Errno 101/);
  });

  it.skipIf(!caps.dropPrivileges)(
    'the unprivileged uid cannot write outside, nor signal the harness',
    async () => {
      const target = join(REPO_ROOT, `sdt-sandbox-escape-${process.pid}`);
      const w = await run(`open(${JSON.stringify(target)}, "w").write("pwned")\n`, osOnly);
      expect(w.error).toMatch(/PermissionError|Permission denied/);
      expect(existsSync(target)).toBe(false);
      const k = await run(`import os\nos.kill(${process.pid}, 9)\n`, osOnly);
      // Inside a PID namespace the harness is invisible (ESRCH); outside one the uid drop refuses it (EPERM).
      expect(k.error).toMatch(/PermissionError|ProcessLookupError/);
      const k2 = await run(`import os\nos.kill(${process.pid}, 9)\n`, {
        ...osOnly,
        capabilities: { ...caps, namespaces: false },
      });
      expect(k2.error).toMatch(/PermissionError/);
    },
  );
});

describe('sandbox: fallback without namespaces', () => {
  it('still reaps a setsid child and bounds a fork bomb', async () => {
    const fallback = { ...caps, namespaces: false };
    const r = await run(
      'import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nelse:\n    time.sleep(0.3)\n',
      { capabilities: fallback },
    );
    expect(r.passed).toBe(true);
    const bomb = await run('import os\nwhile True:\n    os.fork()\n', { capabilities: fallback });
    expect(bomb.passed).toBe(false);
    expect(['process-limit', 'timeout']).toContain(bomb.errorKind);
  });
});

describe('classify', () => {
  it('finds the last exception line of a traceback', () => {
    const tb = 'Traceback (most recent call last):\n  File "x", line 1\nValueError: bad\n';
    expect(lastException(tb)).toBe('ValueError: bad');
    expect(lastException('nothing')).toBeNull();
  });

  it('needs the completion nonce and exit 0 to pass', () => {
    const base = { signal: null, timedOut: false, outputOverflow: false, stderr: '' };
    expect(classify({ ...base, exitCode: 0, completed: true }).passed).toBe(true);
    expect(classify({ ...base, exitCode: 0, completed: false }).errorKind).toBe('early-exit');
    expect(classify({ ...base, exitCode: 1, completed: false, stderr: 'MemoryError\n' }).errorKind).toBe(
      'memory',
    );
  });
});
