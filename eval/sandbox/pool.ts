import PQueue from 'p-queue';
import { probeCapabilities, type SandboxCapabilities } from './capabilities.ts';
import { runInSandbox } from './sandbox.ts';
import type { SandboxLimits, SandboxResult } from './types.ts';

export interface SandboxPoolOptions {
  concurrency: number;
  limits?: Partial<SandboxLimits>;
  python?: string;
}

/**
 * Runs many candidates in parallel, at most `concurrency` at a time. Each running candidate holds a slot,
 * and the slot picks its private uid, so no two live sandboxes share a process-count budget.
 */
export class SandboxPool {
  readonly capabilities: SandboxCapabilities;
  private readonly queue: PQueue;
  private readonly freeSlots: number[];

  constructor(private readonly opts: SandboxPoolOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    this.capabilities = probeCapabilities(opts.python);
    this.queue = new PQueue({ concurrency: opts.concurrency });
    this.freeSlots = Array.from({ length: opts.concurrency }, (_, i) => i);
  }

  run(program: string, limits?: Partial<SandboxLimits>): Promise<SandboxResult> {
    return this.queue.add(async () => {
      const slot = this.freeSlots.pop();
      if (slot === undefined) throw new Error('sandbox pool: no free slot (queue concurrency broken)');
      try {
        return await runInSandbox(program, {
          slot,
          capabilities: this.capabilities,
          limits: { ...this.opts.limits, ...limits },
        });
      } finally {
        this.freeSlots.push(slot);
      }
    }) as Promise<SandboxResult>;
  }

  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }
}
