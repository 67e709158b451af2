import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { latestCheckpoint, listCheckpoints, readTrainerState } from '../schemas/checkpoint.ts';
import {
  type NativeTrainEvent,
  parseNativeEvent,
  type StreamBatch,
  StreamWriter,
} from '../schemas/stream.ts';
import { builtNative } from './native-build.ts';

const bin = builtNative('sdt-native');
const dir = mkdtempSync(join(tmpdir(), 'sdt-native-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = {
  model: {
    vocab_size: 48,
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    max_position_embeddings: 32,
    mask_token_id: 3,
  },
  total_steps: 8,
  micro_batches: 2,
  schedule: { lr: 0.01, min_lr: 0.001, warmup_steps: 2 },
  optimizer: { grad_clip: 1.0, weight_decay: 0.1 },
  seed: 7,
  threads: 1,
};
const configPath = join(dir, 'train.json');
writeFileSync(configPath, JSON.stringify(config));

/** Masked-diffusion-like batches from a fixed generator (a plain LCG, so the test needs no deps). */
function makeBatches(count: number): StreamBatch[] {
  let s = 12345;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s;
  };
  return Array.from({ length: count }, () => {
    const n = 2 * 16;
    const inputIds = new Int32Array(n);
    const targetIds = new Int32Array(n);
    const weights = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const tok = 5 + (next() % 43);
      const masked = next() % 2 === 0;
      inputIds[i] = masked ? 3 : tok;
      targetIds[i] = masked ? tok : -1;
      weights[i] = masked ? 1.5 : 0;
    }
    return { B: 2, T: 16, tag: 'mask', inputIds, targetIds, weights };
  });
}
const batches = makeBatches(16);

interface Trainer {
  child: ChildProcess;
  events: NativeTrainEvent[];
  /** Resolves when an event satisfying `pred` has arrived. */
  waitFor(pred: (e: NativeTrainEvent) => boolean): Promise<void>;
  exit: Promise<number | null>;
}

function startTrainer(args: string[]): Trainer {
  const child = spawn(bin as string, ['train', '--config', configPath, '--stream', '-', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const events: NativeTrainEvent[] = [];
  const waiters: { pred: (e: NativeTrainEvent) => boolean; resolve: () => void }[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const e = parseNativeEvent(line);
    if (!e) return;
    events.push(e);
    for (const w of waiters.splice(0)) {
      if (w.pred(e)) w.resolve();
      else waiters.push(w);
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      if (code !== 0) console.error(stderr);
      resolve(code);
    }),
  );
  return {
    child,
    events,
    exit,
    waitFor: (pred) =>
      events.some(pred) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve })),
  };
}

const losses = (events: NativeTrainEvent[]) =>
  events.flatMap((e) => (e.event === 'step' ? [e.loss as number] : []));

describe.skipIf(!bin)('sdt-native train fed by schemas/stream.ts through a pipe', () => {
  let reference: NativeTrainEvent[] = [];

  it('trains, evaluates and checkpoints an uninterrupted run', async () => {
    const t = startTrainer(['--out', join(dir, 'a')]);
    const w = await StreamWriter.toWritable(t.child.stdin as NodeJS.WritableStream as never);
    await w.writeEval({ ...batches[0], tag: 'val' });
    for (const b of batches) await w.writeTrain(b);
    await w.end();
    expect(await t.exit).toBe(0);
    reference = t.events;
    const steps = t.events.filter((e) => e.event === 'step');
    expect(steps).toHaveLength(8);
    expect(steps.every((e) => e.event === 'step' && !e.skipped && e.tokens_per_s > 0)).toBe(true);
    expect(steps.map((e) => (e.event === 'step' ? e.tokens : 0))).toEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((k) => k * 64),
    );
    expect(t.events.find((e) => e.event === 'eval')).toMatchObject({ step: 0, group: 'val' });
    expect(t.events.at(-1)).toMatchObject({
      event: 'done',
      step: 8,
      reason: 'total_steps',
      stream_position: 16,
    });
    const ckpt = latestCheckpoint(join(dir, 'a'));
    expect(ckpt?.step).toBe(8);
    expect((await readTrainerState(ckpt?.path as string)).stream_position).toBe(16);
  });

  it('on SIGTERM checkpoints and exits 0; resuming from stream_position reproduces the losses bit for bit', async () => {
    const run = join(dir, 'b');
    const first = startTrainer(['--out', run]);
    const w = await StreamWriter.toWritable(first.child.stdin as never);
    for (const b of batches.slice(0, 6)) await w.writeTrain(b);
    await first.waitFor((e) => e.event === 'step' && e.step === 3);
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(first.events.find((e) => e.event === 'checkpoint')).toMatchObject({ step: 3 });
    expect(first.events.at(-1)).toMatchObject({ event: 'done', reason: 'signal', step: 3 });
    const ckpt = latestCheckpoint(run);
    const state = await readTrainerState(ckpt?.path as string);
    expect(state.stream_position).toBe(6);

    const second = startTrainer(['--out', run, '--resume']);
    const w2 = await StreamWriter.toWritable(second.child.stdin as never, {
      firstTrainFrame: state.stream_position,
    });
    for (const b of batches.slice(state.stream_position)) await w2.writeTrain(b);
    await w2.end();
    expect(await second.exit).toBe(0);
    expect([...losses(first.events), ...losses(second.events)]).toEqual(losses(reference));
    expect(listCheckpoints(run).map((c) => c.step)).toEqual([3, 8]);
  });
});
