/** Resource limits for one sandboxed candidate. */
export interface SandboxLimits {
  /** Wall-clock limit, enforced by the harness (kill of the whole process group / PID namespace). */
  timeoutMs: number;
  /** RLIMIT_CPU in seconds (SIGXCPU, then SIGKILL one second later). */
  cpuSeconds: number;
  /** RLIMIT_AS in bytes. */
  memoryBytes: number;
  /** RLIMIT_FSIZE in bytes: the largest file the candidate may write. */
  fileSizeBytes: number;
  /** RLIMIT_NPROC: processes of the sandbox uid (enforced by the OS only when not running as root). */
  processes: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** Size of the tmpfs mounted on the work directory, where the machine allows it (a disk quota). */
  diskBytes: number;
  /** stdout + stderr bytes kept; more kills the candidate with an output-limit error. */
  maxOutputBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutMs: 10_000,
  cpuSeconds: 10,
  memoryBytes: 1024 * 1024 * 1024,
  fileSizeBytes: 16 * 1024 * 1024,
  processes: 32,
  openFiles: 128,
  diskBytes: 64 * 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
};

/**
 * Why a candidate did not pass. `assertion` is a wrong answer (the suite's tests failed); the others are
 * the sandbox stopping it or the program breaking.
 */
export type ErrorKind =
  | 'assertion'
  | 'runtime'
  | 'syntax'
  | 'timeout'
  | 'memory'
  | 'output-limit'
  | 'process-limit'
  | 'network'
  | 'fs'
  | 'process'
  | 'early-exit'
  | 'sandbox';

export interface SandboxResult {
  passed: boolean;
  /** null when passed. */
  errorKind: ErrorKind | null;
  /** One line: the exception or the limit hit. */
  error: string | null;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** Marker put in the environment of every process of this run (SDT_SANDBOX_ID). */
  sandboxId: string;
  /** Process group id of the sandbox (the pid of its first process). */
  pgid: number | null;
}
