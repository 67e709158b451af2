/** `sdt sample`: complete prompts with a checkpoint through `sdt-native serve`. */
import { bool, type CommandSpec, num, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { Progress } from '../../common/progress.ts';
import { type Completion, EngineClient } from '../../engine/client.ts';
import { deviceFromOptions, SAMPLER_OPTIONS, settingsFromOptions } from '../../engine/settings.ts';
import type { WireStepEvent } from '../../schemas/engine.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { type PromptItem, readPromptFile } from '../sample/prompts.ts';
import { renderFrame, TerminalPlayer } from '../sample/render.ts';
import { completionToRow, writeTrajectories } from '../trajectories/record.ts';

export const command: CommandSpec = {
  name: 'sample',
  summary: 'complete prompts with a checkpoint (block-wise diffusion or AR decoding)',
  description: `
Decodes blocks of --block positions left to right; inside a block each step commits the masked positions
the rule picks, attending to the KV cache of the prompt and committed blocks. On a terminal the blocks are
shown filling in, step by step. --ar decodes token by token (causal checkpoints). See docs/sample.md.`,
  options: {
    ckpt: {
      type: 'string',
      description: 'checkpoint directory (config.json, model.safetensors, tokenizer.json)',
      arg: 'DIR',
    },
    prompt: { type: 'string', description: 'the prompt text', arg: 'TEXT' },
    prompts: {
      type: 'string',
      description: 'JSONL file of prompts ("..." or {"id","prompt"} per line)',
      arg: 'FILE',
    },
    tokenizer: { type: 'string', description: 'tokenizer.json [default: CKPT/tokenizer.json]', arg: 'FILE' },
    ...SAMPLER_OPTIONS,
    batch: {
      type: 'number',
      min: 1,
      integer: true,
      description: 'prompts sent per request',
      default: 8,
      arg: 'N',
    },
    threads: {
      type: 'number',
      min: 0,
      integer: true,
      description:
        'threads of sdt-native (0 = OMP_NUM_THREADS if set, else 1: small-batch decoding is latency-bound)',
      default: 0,
      arg: 'N',
    },
    'record-trajectory': {
      type: 'string',
      output: 'file',
      description: "write every generation's steps as Arrow rows here",
      arg: 'OUT',
    },
    json: { type: 'boolean', description: 'print one JSON object per completion instead of text' },
    'no-animate': { type: 'boolean', description: 'do not animate the steps on a terminal' },
    'step-delay': {
      type: 'number',
      min: 0,
      description: 'terminal animation: milliseconds per step',
      default: 40,
      arg: 'MS',
    },
    'random-init': {
      type: 'number',
      min: 0,
      integer: true,
      description: 'testing: a random model of --config instead of --ckpt',
      arg: 'SEED',
    },
    config: { type: 'string', description: 'testing: config.json for --random-init', arg: 'FILE' },
  },
  examples: [
    'sdt sample --ckpt runs/demo/ckpt-final --prompt "def fib(n):" --block 16 --threshold 0.9',
    'sdt sample --ckpt runs/ar/ckpt-final --prompts heads.jsonl --ar --max-new 64 --json',
    'sdt sample --ckpt CKPT --prompts heads.jsonl --record-trajectory out/traj.arrow',
  ],
  async run(o) {
    const ckpt = optStr(o, 'ckpt');
    const seedInit = o['random-init'] as number | undefined;
    if (!ckpt && seedInit === undefined) throw new UserError('sdt sample: --ckpt DIR is required.');
    if (seedInit !== undefined && !optStr(o, 'config')) {
      throw new UserError('sdt sample: --random-init needs --config FILE (a config.json).');
    }
    let items: PromptItem[];
    if (optStr(o, 'prompt') !== undefined && optStr(o, 'prompts') !== undefined) {
      throw new UserError('sdt sample: give --prompt TEXT or --prompts FILE, not both.');
    }
    if (optStr(o, 'prompt') !== undefined) items = [{ id: '1', prompt: str(o, 'prompt') }];
    else if (optStr(o, 'prompts') !== undefined) items = await readPromptFile(str(o, 'prompts'));
    else throw new UserError('sdt sample: give --prompt TEXT or --prompts FILE.');
    const batch = num(o, 'batch');
    if (!(batch >= 1)) throw new UserError('sdt sample: --batch must be >= 1.');

    const settings = settingsFromOptions(o);
    const trajPath = optStr(o, 'record-trajectory');
    const animate = Boolean(process.stdout.isTTY) && !bool(o, 'json') && !bool(o, 'no-animate');
    settings.trajectory = Boolean(trajPath);

    const client = await EngineClient.start({
      ckpt,
      randomInit: seedInit !== undefined ? { seed: seedInit, config: str(o, 'config') } : undefined,
      tokenizer: optStr(o, 'tokenizer'),
      device: deviceFromOptions(o),
      env:
        num(o, 'threads') > 0
          ? { OMP_NUM_THREADS: String(num(o, 'threads')), OPENBLAS_NUM_THREADS: String(num(o, 'threads')) }
          : undefined,
    });
    if (settings.mode === 'ar' && client.info.attention_mode !== 'causal') {
      process.stderr.write(
        `warning: --ar on a ${client.info.attention_mode} checkpoint; AR decoding expects a causal one\n`,
      );
    }
    const rows: TrajectoryRow[] = [];
    const progress = new Progress({ label: 'sample', total: items.length, unit: 'prompts', quiet: animate });
    try {
      const tok = client.requireTokenizer();
      // A live animation follows one prompt at a time; otherwise prompts go in batches.
      const per = animate ? 1 : batch;
      for (let i = 0; i < items.length; i += per) {
        const chunk = items.slice(i, i + per);
        const live = animate ? new LiveCanvas(chunk[0].prompt, settings.maxNew ?? 0, client, tok) : null;
        const done = await client.generate(
          chunk.map((c) => c.prompt),
          settings,
          live ? (e) => live.step(e, num(o, 'step-delay')) : undefined,
        );
        for (let k = 0; k < chunk.length; k++) {
          const c = done[k];
          if (c.contextClipped > 0) {
            process.stderr.write(
              `note: prompt ${chunk[k].id}: ${c.contextClipped} of --max-new did not fit in the ${client.info.max_position_embeddings}-token context\n`,
            );
          }
          if (trajPath) rows.push(completionToRow(chunk[k].id, client.info.source, c, settings));
          if (bool(o, 'json')) {
            process.stdout.write(
              `${JSON.stringify({
                id: chunk[k].id,
                prompt: chunk[k].prompt,
                completion: c.text,
                eos: c.eos,
                tokens: c.tokens.length,
                steps: c.steps,
                forward_passes: c.forwardPasses,
                prefill_ms: c.timings.prefillMs,
                decode_ms: c.timings.decodeMs,
              })}\n`,
            );
          } else if (live) {
            live.finish(c);
            process.stdout.write(stats(c));
          } else {
            if (items.length > 1) process.stdout.write(`### ${chunk[k].id}\n`);
            process.stdout.write(`${chunk[k].prompt}${c.text}\n`);
          }
        }
        progress.tick(chunk.length);
      }
      progress.done();
    } finally {
      await client.close();
    }
    if (trajPath) {
      await writeTrajectories(trajPath, rows);
      process.stderr.write(`wrote ${rows.length} trajectories to ${trajPath}\n`);
    }
    return 0;
  },
};

function stats(c: Completion): string {
  const perPass = c.forwardPasses > 0 ? c.tokens.length / c.forwardPasses : 0;
  return `\x1b[2m[${c.tokens.length} tokens, ${c.steps} steps, ${c.forwardPasses} forward passes (${perPass.toFixed(2)} tokens/pass), ${(c.timings.prefillMs + c.timings.decodeMs).toFixed(0)} ms${c.eos ? ', <|eos|>' : ''}]\x1b[0m\n`;
}

/** Draws the canvas as step events arrive from the sampler. */
class LiveCanvas {
  private readonly canvas: Int32Array;
  private readonly player = new TerminalPlayer(process.stdout);
  private readonly mask: number;
  private lastDraw = 0;
  constructor(
    private readonly prompt: string,
    maxNew: number,
    client: EngineClient,
    private readonly tok: { tokenText(id: number): string },
  ) {
    this.mask = client.info.mask_token_id;
    this.canvas = new Int32Array(maxNew).fill(this.mask);
  }
  step(e: WireStepEvent, minDelayMs: number): void {
    e.positions.forEach((p, k) => {
      if (p < this.canvas.length) this.canvas[p] = e.tokens[k];
    });
    // Steps can come faster than a terminal can show them: redraw at most every minDelayMs.
    const now = performance.now();
    if (now - this.lastDraw < minDelayMs) return;
    this.lastDraw = now;
    const shown = this.canvas.slice(0, this.extent());
    this.player.draw(renderFrame(this.prompt, shown, this.mask, (id) => this.tok.tokenText(id), e, true));
  }
  /** The final frame shows exactly what is returned (nothing after <|eos|>). */
  finish(c: Completion): void {
    this.player.draw(
      renderFrame(this.prompt, c.tokens, this.mask, (id) => this.tok.tokenText(id), null, true),
    );
  }
  /** Canvas up to the last position any step touched, so blocks not yet opened are not drawn. */
  private extent(): number {
    let n = 0;
    for (let p = 0; p < this.canvas.length; p++) if (this.canvas[p] !== this.mask) n = p + 1;
    return n;
  }
}
