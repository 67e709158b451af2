/**
 * The `sdt-native train` child process: a stdin we write stream bytes into with backpressure, JSON-line
 * events from its stdout, and the tail of its stderr kept for error reports. The child runs in its own
 * process group so a Ctrl-C in the terminal reaches only us; we forward exactly one SIGINT, which makes it
 * finish the current step, write a checkpoint and exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface NativeEvent {
  event: string;
  [k: string]: unknown;
}

export interface NativeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class NativeProcess {
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private readonly tailLines: number;
  private exited: NativeExit | undefined;
  private interrupted = false;
  readonly exit: Promise<NativeExit>;

  constructor(
    bin: string,
    args: string[],
    private readonly onEvent: (e: NativeEvent) => void,
    opts: { env?: NodeJS.ProcessEnv; tailLines?: number; onStderr?: (line: string) => void } = {},
  ) {
    this.tailLines = opts.tailLines ?? 20;
    this.child = spawn(bin, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: opts.env ?? process.env,
    });
    // Writes after the child died fail with EPIPE; write() reports that through its promise.
    this.child.stdin!.on('error', () => undefined);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const trimmed = line.trim();
      if (!trimmed) return;
      let ev: NativeEvent;
      try {
        ev = JSON.parse(trimmed) as NativeEvent;
      } catch {
        this.pushTail(`(stdout) ${trimmed}`);
        return;
      }
      if (typeof ev.event !== 'string' && typeof (ev as { type?: unknown }).type === 'string') {
        ev.event = (ev as unknown as { type: string }).type;
      }
      this.onEvent(ev);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.pushTail(line);
      opts.onStderr?.(line);
    });
    this.exit = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.pushTail(`could not start ${bin}: ${err.message}`);
        this.exited = { code: 127, signal: null };
        resolve(this.exited);
      });
      this.child.on('close', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
  }

  private pushTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.tailLines) this.tail.shift();
  }

  /** The last lines the child wrote on stderr. */
  stderrTail(): string[] {
    return [...this.tail];
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  /** Write bytes; resolves when the pipe can take more (backpressure). False once the child is gone. */
  write(bytes: Uint8Array): Promise<boolean> {
    const stdin = this.child.stdin!;
    if (!this.alive || stdin.destroyed || !stdin.writable) return Promise.resolve(false);
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        stdin.off('drain', onDrain);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onExit = (): void => done(false);
      const ok = stdin.write(bytes, (err) => {
        if (err) done(false);
      });
      if (ok) done(true);
      else {
        stdin.once('drain', onDrain);
        this.exit.then(onExit);
      }
    });
  }

  endInput(): void {
    if (!this.child.stdin!.destroyed) this.child.stdin!.end();
  }

  /** Ask the child to checkpoint and stop (once). */
  interrupt(): void {
    if (this.interrupted || !this.alive) return;
    this.interrupted = true;
    this.child.kill('SIGINT');
  }

  get wasInterrupted(): boolean {
    return this.interrupted;
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}
