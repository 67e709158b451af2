/**
 * `sdt data corrupt`: materialise corrupted examples of a built dataset to Arrow for inspection, using
 * exactly the code the trainer feed uses (windows -> corruptWindow), and print some as inline diffs.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { bool, type CommandSpec, num, optNum, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { Progress } from '../../common/progress.ts';
import type { Split } from '../../schemas/dataset.ts';
import { ArrowExampleWriter, type CorruptRecord } from '../corrupt/arrow.ts';
import { type CorruptConfig, type CorruptedExample, corruptWindow } from '../corrupt/corrupt.ts';
import { COLOR_STYLE, PLAIN_STYLE, renderExample } from '../corrupt/diff.ts';
import { DEFAULT_ALPHA_MAX } from '../corrupt/edit.ts';
import type { TargetForm } from '../corrupt/targets.ts';
import type { CorruptSpecials } from '../corrupt/types.ts';
import { vocabularyFromTokenizer } from '../corrupt/vocab.ts';
import { WindowPacker } from '../corrupt/windows.ts';
import { openDataset } from '../dataset/read.ts';
import { loadTokenizer } from '../tokenizer/index.ts';

function resolveTokenizerPath(dataset: string, recorded: string): string {
  if (isAbsolute(recorded)) return recorded;
  const beside = join(dataset, recorded);
  return existsSync(beside) ? beside : resolve(recorded);
}

function checkRange(name: string, v: number, lo: number, hi: number, integer = false): void {
  if (!(v >= lo && v <= hi) || (integer && !Number.isInteger(v))) {
    throw new UserError(
      `sdt data corrupt: --${name} must be ${integer ? 'an integer ' : ''}in [${lo}, ${hi}]; got ${v}.`,
    );
  }
}

export const command: CommandSpec = {
  name: 'data corrupt',
  summary: 'write mask or edit corruptions of a dataset to Arrow and show one as a diff',
  description: `Cuts the rows of DATASET_DIR (built by \`sdt data build\`) into windows of --seq-len tokens, the way
the trainer does, corrupts window i with an Rng seeded from (--seed, i), and writes one Arrow row per
example: index, kind, t, rows, input, target, weight, segment, masked, edit_distance, edit_budget,
edited_length, missing_before, missing_tokens (see docs/corruptions.md). Edits that grow a full window
past the canvas (default --seq-len) lose their tail, as in training; a larger --canvas keeps it.`,
  positionals: [{ name: 'DATASET_DIR', description: 'a dataset built by `sdt data build`', required: true }],
  conflicts: [
    ...(['t', 't-cap', 't-mode', 'block-size'] as const).map((f): [string, string, string] => [
      'kind=edit',
      f,
      `--${f} is a mask-corruption setting`,
    ]),
    ...(['alpha', 'alpha-max', 'targets', 'canvas'] as const).map((f): [string, string, string] => [
      'kind=mask',
      f,
      `--${f} is an edit-corruption setting; add --kind edit`,
    ]),
  ],
  options: {
    kind: { type: 'string', description: 'corruption process', choices: ['mask', 'edit'], default: 'mask' },
    out: {
      type: 'string',
      output: 'file',
      arg: 'FILE.arrow',
      description: 'Arrow IPC file to write',
      required: true,
    },
    limit: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'number of examples',
      default: 100,
    },
    seed: { type: 'number', min: 0, integer: true, description: 'seed of the corruption Rng', default: 0 },
    split: {
      type: 'string',
      description: 'dataset split',
      choices: ['train', 'validation'],
      default: 'train',
    },
    'seq-len': {
      type: 'number',
      min: 3,
      integer: true,
      arg: 'L',
      description: 'window length (BOS/EOS included)',
      default: 512,
    },
    pack: {
      type: 'boolean',
      description: 'pack short rows into one window (--no-pack: one row per window)',
      default: true,
    },
    structure: { type: 'boolean', description: 'structure-aware: mask whole spans / add span-based edits' },
    't-mode': {
      type: 'string',
      description: 'mask: one t per sequence or per block',
      choices: ['sequence', 'block'],
      default: 'sequence',
    },
    'block-size': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'B',
      description: 'mask: block size for --t-mode block',
      default: 32,
    },
    't-cap': { type: 'number', min: 0, max: 1, description: 'mask: warm-up cap, t ~ U(0, cap)', default: 1 },
    t: { type: 'number', min: 0, max: 1, description: 'mask: fixed t instead of a draw' },
    'alpha-max': {
      type: 'number',
      min: 0,
      max: 1,
      description: 'edit: alpha_t ~ U(0, alpha-max), k = floor(len alpha_t)',
      default: DEFAULT_ALPHA_MAX,
    },
    alpha: { type: 'number', min: 0, max: 1, description: 'edit: fixed alpha_t instead of a draw' },
    targets: {
      type: 'string',
      description: 'edit: target form',
      choices: ['positional', 'aligned'],
      default: 'aligned',
    },
    canvas: {
      type: 'number',
      min: 1,
      integer: true,
      description: 'edit: canvas length (default: --seq-len)',
    },
    tokenizer: {
      type: 'string',
      arg: 'FILE',
      description: 'tokenizer.json (default: the one the manifest records)',
    },
    show: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'examples printed as diffs',
      default: 1,
    },
    color: {
      type: 'string',
      description: 'coloured diff',
      choices: ['auto', 'always', 'never'],
      default: 'auto',
    },
  },
  examples: [
    'sdt data corrupt runs/data --kind mask --structure --out runs/mask.arrow --limit 50',
    'sdt data corrupt runs/data --kind edit --targets aligned --alpha-max 0.1 --out runs/edit.arrow',
  ],
  async run(opts, positionals) {
    const dir = positionals[0];
    const kind = str(opts, 'kind') as 'mask' | 'edit';
    const limit = num(opts, 'limit');
    const seqLen = num(opts, 'seq-len');
    checkRange('limit', limit, 1, 1e7, true);
    checkRange('seq-len', seqLen, 4, 1 << 20, true);
    checkRange('t-cap', num(opts, 't-cap'), 1e-6, 1);
    checkRange('alpha-max', num(opts, 'alpha-max'), 0, 1);
    checkRange('block-size', num(opts, 'block-size'), 1, 1 << 20, true);
    const tFixed = optNum(opts, 't');
    if (tFixed !== undefined) checkRange('t', tFixed, 0, 1);
    const alpha = optNum(opts, 'alpha');
    if (alpha !== undefined) checkRange('alpha', alpha, 0, 1);
    const canvas = optNum(opts, 'canvas');
    if (canvas !== undefined) checkRange('canvas', canvas, 1, 1 << 20, true);
    // A canvas shorter than the window would be silently widened to it: refuse what cannot take effect.
    if (canvas !== undefined && canvas < num(opts, 'seq-len'))
      throw new UserError(
        `--canvas ${canvas} is below --seq-len ${num(opts, 'seq-len')}: the canvas holds the whole window; give --canvas >= --seq-len.`,
      );

    const ds = await openDataset(dir);
    const tokPath = optStr(opts, 'tokenizer') ?? resolveTokenizerPath(dir, ds.manifest.tokenizerPath);
    if (!existsSync(tokPath)) {
      throw new UserError(
        `${join(dir, 'manifest.json')} names tokenizer ${ds.manifest.tokenizerPath}, which does not exist; restore it or pass --tokenizer FILE.`,
      );
    }
    const tok = await loadTokenizer(tokPath);
    if (tok.hash !== ds.manifest.tokenizerHash) {
      throw new UserError(
        `${tokPath} (sha256 ${tok.hash.slice(0, 12)}) is not the tokenizer ${dir} was built with (${ds.manifest.tokenizerHash.slice(0, 12)}); pass the right --tokenizer.`,
      );
    }
    const specials: CorruptSpecials = {
      pad: tok.special.pad,
      bos: tok.special.bos,
      eos: tok.special.eos,
      mask: tok.special.mask,
      del: tok.special.del,
    };
    const structure = bool(opts, 'structure');
    const cfg: CorruptConfig = {
      kind,
      seed: num(opts, 'seed'),
      specials,
      mask: {
        structure,
        mode: str(opts, 't-mode') as 'sequence' | 'block',
        blockSize: num(opts, 'block-size'),
        tCap: num(opts, 't-cap'),
        ...(tFixed !== undefined ? { t: tFixed } : {}),
      },
      edit: {
        vocab: vocabularyFromTokenizer(tok),
        structure,
        alphaMax: num(opts, 'alpha-max'),
        targets: str(opts, 'targets') as TargetForm,
        ...(alpha !== undefined ? { alpha } : {}),
        ...(canvas !== undefined ? { canvas } : {}),
      },
    };

    const out = str(opts, 'out');
    const writer = await ArrowExampleWriter.open(out);
    const progress = new Progress({ label: `corrupt (${kind})`, total: limit, unit: 'examples' });
    const packer = new WindowPacker({ seqLen, specials, pack: bool(opts, 'pack') });
    const stats = new CorruptStats(specials);
    const shown: CorruptRecord[] = [];
    const take = async (windows: ReturnType<WindowPacker['push']>) => {
      for (const w of windows) {
        if (stats.count >= limit) return;
        const index = stats.count;
        const record = { index, rowIds: w.pieces.map((p) => p.rowId), example: corruptWindow(w, index, cfg) };
        stats.add(record.example);
        if (shown.length < num(opts, 'show')) shown.push(record);
        await writer.add(record);
        progress.tick();
      }
    };
    try {
      for await (const row of ds.rows(str(opts, 'split') as Split)) {
        await take(packer.push(row));
        if (stats.count >= limit) break;
      }
      if (stats.count < limit) await take(packer.flush());
      if (stats.count === 0) {
        throw new UserError(
          `${dir}: the ${str(opts, 'split')} split has no rows; pick the other --split or rebuild the dataset.`,
        );
      }
      await writer.close();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    progress.done();

    const color = str(opts, 'color');
    const style =
      color === 'always' || (color === 'auto' && process.stdout.isTTY) ? COLOR_STYLE : PLAIN_STYLE;
    const text = (id: number) => tok.tokenText(id);
    for (const r of shown) {
      const e = r.example;
      const head =
        e.kind === 'mask'
          ? `t=${e.t?.toFixed(3)} masked=${e.masked}`
          : `alpha=${e.t?.toFixed(3)} k=${e.edit.budget} distance=${e.distance} ops=${Object.entries(
              e.edit.applied,
            )
              .filter(([, c]) => c > 0)
              .map(([o, c]) => `${o}:${c}`)
              .join(',')}`;
      process.stdout.write(`--- example ${r.index} (${e.kind}, rows ${r.rowIds.join(',')}) ${head}\n`);
      process.stdout.write(`${renderExample(e, text, style)}\n`);
    }
    process.stdout.write(`wrote ${stats.count} ${kind} examples to ${out}: ${stats.line()}\n`);
    return 0;
  },
};

/** Running totals for the closing line: the measured mask ratio, or the mean edit distance against k. */
class CorruptStats {
  count = 0;
  private maskable = 0;
  private masked = 0;
  private inSpans = 0;
  private distance = 0;
  private budget = 0;
  private readonly ops = new Map<string, number>();
  constructor(private readonly sp: CorruptSpecials) {}

  add(e: CorruptedExample): void {
    this.count++;
    if (e.kind === 'mask') {
      for (const t of e.target) if (t !== this.sp.pad && t !== this.sp.bos) this.maskable++;
      this.masked += e.masked;
      const covered = new Uint8Array(e.input.length);
      for (const s of e.maskedSpans) covered.fill(1, s.start, s.end);
      for (const c of covered) this.inSpans += c;
    } else {
      this.distance += e.distance;
      this.budget += e.edit.budget;
      for (const [op, c] of Object.entries(e.edit.applied)) this.ops.set(op, (this.ops.get(op) ?? 0) + c);
    }
  }

  line(): string {
    if (this.maskable > 0) {
      const spans =
        this.inSpans > 0
          ? `, ${((100 * this.inSpans) / this.masked).toFixed(1)}% of them in whole spans`
          : '';
      return `mask ratio ${(this.masked / this.maskable).toFixed(4)} over ${this.maskable} maskable tokens${spans}`;
    }
    const n = Math.max(1, this.count);
    const ops = [...this.ops]
      .filter(([, c]) => c > 0)
      .map(([o, c]) => `${o} ${c}`)
      .join(', ');
    return `mean edit distance ${(this.distance / n).toFixed(2)} (mean k ${(this.budget / n).toFixed(2)}); ops: ${ops}`;
  }
}
