import type { ErrorKind } from './types.ts';

export const VIOLATION_MARKER = '__SDT_VIOLATION__';

export interface RunFacts {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  outputOverflow: boolean;
  /** The per-run nonce was printed: the program ran to its end. */
  completed: boolean;
  stderr: string;
}

/** The last exception line of a Python traceback, e.g. "AssertionError: wrong" or "MemoryError". */
export function lastException(stderr: string): string | null {
  const lines = stderr.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s?(.*))?$/.exec(lines[i]);
    if (m) return lines[i].slice(0, 300);
  }
  return null;
}

function firstViolation(stderr: string): { kind: ErrorKind; detail: string } | null {
  const i = stderr.indexOf(VIOLATION_MARKER);
  if (i < 0) return null;
  const line = stderr.slice(i + VIOLATION_MARKER.length + 1).split('\n')[0];
  const space = line.indexOf(' ');
  const kind = line.slice(0, space) as ErrorKind;
  return { kind, detail: line.slice(space + 1) };
}

/**
 * Decide pass/fail and why. A candidate passes only when it exits 0 after printing the nonce with no
 * sandbox refusal, so os._exit(0) or a swallowed PermissionError cannot pass for success.
 */
export function classify(f: RunFacts): {
  passed: boolean;
  errorKind: ErrorKind | null;
  error: string | null;
} {
  if (f.timedOut) return { passed: false, errorKind: 'timeout', error: 'wall-clock limit reached' };
  if (f.outputOverflow) return { passed: false, errorKind: 'output-limit', error: 'too much output' };
  const violation = firstViolation(f.stderr);
  if (violation) return { passed: false, errorKind: violation.kind, error: violation.detail };
  if (f.signal === 'SIGXCPU' || (f.signal === 'SIGKILL' && /\bCPU\b/.test(f.stderr))) {
    return { passed: false, errorKind: 'timeout', error: 'CPU-time limit reached' };
  }
  if (f.signal === 'SIGXFSZ') return { passed: false, errorKind: 'output-limit', error: 'file-size limit' };
  if (f.exitCode === 0 && f.completed && f.signal === null)
    return { passed: true, errorKind: null, error: null };
  if (f.exitCode === 0 && !f.completed) {
    return { passed: false, errorKind: 'early-exit', error: 'exited before its tests finished' };
  }
  const exc = lastException(f.stderr);
  const name = exc ? exc.split(':')[0] : '';
  const error = exc ?? (f.signal ? `killed by ${f.signal}` : `exit status ${f.exitCode}`);
  if (name === 'MemoryError') return { passed: false, errorKind: 'memory', error };
  // Errno 27: one file over RLIMIT_FSIZE; errno 28: the work directory's tmpfs (its disk quota) is full.
  if (/\[Errno 2[78]\]|File too large|No space left on device/.test(f.stderr)) {
    return { passed: false, errorKind: 'output-limit', error };
  }
  if (name === 'BlockingIOError' || /\[Errno 11\] Resource temporarily unavailable/.test(f.stderr)) {
    return { passed: false, errorKind: 'process-limit', error };
  }
  if (name === 'SyntaxError' || name === 'IndentationError' || name === 'TabError') {
    return { passed: false, errorKind: 'syntax', error };
  }
  if (name === 'AssertionError') return { passed: false, errorKind: 'assertion', error };
  if (f.signal === 'SIGKILL' || f.signal === 'SIGSEGV' || f.signal === 'SIGABRT') {
    // RLIMIT_AS failures inside C code often end as a crash rather than a MemoryError.
    return { passed: false, errorKind: 'runtime', error };
  }
  return { passed: false, errorKind: 'runtime', error };
}
