/**
 * `sdt train --stage distill|onpolicy`: the post-training stages (docs/distill.md). --stage is an option of
 * `sdt train` (anywhere among its flags, `--stage NAME` or `--stage=NAME`): bin/main.ts routes a train command
 * that carries it here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bool, type CommandSpec, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { nativeBinary } from '../../common/native.ts';
import { deviceFromOptions, SAMPLER_OPTIONS, settingsFromOptions } from '../../engine/settings.ts';
import { SUITE_DATA_DIR_OPTION } from '../../eval/paths.ts';
import { SandboxPool } from '../../eval/sandbox/pool.ts';
import { DEFAULT_LIMITS } from '../../eval/sandbox/types.ts';
import { SUITES, suitePrompts } from '../../eval/suites/index.ts';
import { loadSuiteTasks, makeVerifier } from '../../eval/verify.ts';
import { plainVocabulary, vocabularyFromTokenizer } from '../../pipelines/corrupt/vocab.ts';
import { loadTokenizer } from '../../pipelines/tokenizer/index.ts';
import { readCheckpointConfig } from '../../schemas/checkpoint.ts';
import { type PromptItem, promptsThatFit, readPromptFile } from '../sample/prompts.ts';
import { anchorWindows } from '../stages/anchor.ts';
import { runDistillStage, specialsFromCheckpoint } from '../stages/distill.ts';
import { runOnPolicy } from '../stages/onpolicy.ts';
import { buildDistillSet, readDistillSet, writeDistillSet } from '../trajectories/distill.ts';
import { datasetPrompts, readTrajectoryInput } from '../trajectories/generate.ts';
import { measuredOn, speedupPoints } from '../trajectories/report-speedup.ts';

const STAGES = ['distill', 'onpolicy'] as const;

async function common(o: OptionValues) {
  const ckpt = str(o, 'ckpt');
  const specials = await specialsFromCheckpoint(ckpt);
  const cfg = await readCheckpointConfig(ckpt);
  const tokPath = join(ckpt, 'tokenizer.json');
  const tokenizer = existsSync(tokPath) ? await loadTokenizer(tokPath) : undefined;
  const vocab = tokenizer ? vocabularyFromTokenizer(tokenizer) : plainVocabulary(cfg.vocab_size);
  const seqLen = num(o, 'seq-len');
  const ds = optStr(o, 'anchor-dataset');
  const anchor = ds ? await anchorWindows(ds, 'train', seqLen, num(o, 'anchor-windows')) : [];
  const validation = ds ? await anchorWindows(ds, 'validation', seqLen, 16) : [];
  if (!ds && num(o, 'anchor-share') > 0) {
    process.stderr.write(
      'note: no --anchor-dataset, so no ordinary data is mixed in (--anchor-share ignored)\n',
    );
  }
  return {
    ckpt,
    specials,
    tokenizer,
    vocab,
    seqLen,
    anchor,
    validation,
    context: cfg.max_position_embeddings,
  };
}

export const command: CommandSpec = {
  name: 'train --stage',
  summary: 'post-training stages: constrained-order distillation, on-policy step reduction',
  description: `
distill: fine-tune --ckpt on the states of kept trajectories (--trajectories, from sdt traj filter; or a
distillation set --set) with targets x0, weights 1/t (t = masked share of the block) and edit augmentation,
mixed with --anchor-share ordinary mask-corrupted windows of --anchor-dataset; writes OUT/checkpoints/.
onpolicy: --rounds rounds of: sample --k trajectories per prompt with the current model, score them, keep per
prompt the --keep-top verified ones with the fewest steps (--reward lev: Levenshtein surrogate; tau: steps),
distil them for --steps steps. OUT/onpolicy.jsonl logs forward passes per token, steps per block, verifier
pass rate and validation loss per round; plot with \`sdt report speedup OUT\`. Reruns resume.`,

  options: {
    stage: { type: 'string', description: 'post-training stage', required: true, choices: [...STAGES] },
    ckpt: { type: 'string', arg: 'DIR', description: 'starting checkpoint', required: true },
    out: {
      type: 'string',
      output: 'dir',
      arg: 'DIR',
      description: 'run directory of the stage',
      required: true,
    },
    steps: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'optimizer steps (onpolicy: per round)',
      default: 100,
    },
    batch: { type: 'number', min: 1, integer: true, arg: 'B', description: 'rows per step', default: 8 },
    'seq-len': {
      type: 'number',
      min: 3,
      integer: true,
      arg: 'T',
      description: 'row length (longer states lose prompt tokens)',
      default: 256,
    },
    lr: {
      type: 'number',
      min: 0,
      minExclusive: true,
      description: 'peak learning rate (cosine to lr/10)',
      default: 1e-4,
    },
    'anchor-dataset': {
      type: 'string',
      arg: 'DIR',
      description: 'tokenized dataset for the ordinary-data anchor and validation',
    },
    'anchor-share': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'S',
      description: 'share of rows from ordinary mask data',
      default: 0.2,
    },
    'anchor-windows': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'anchor windows read from the dataset',
      default: 2048,
    },
    'augment-share': {
      type: 'number',
      min: 0,
      max: 1,
      arg: 'S',
      description: 'share of states with edit augmentation',
      default: 0.5,
    },
    alpha: {
      type: 'number',
      min: 0,
      max: 1,
      description: 'edit augmentation: substituted share of visible tokens',
      default: 0.1,
    },
    trajectories: {
      type: 'string',
      arg: 'FILE|DIR',
      description: 'distill: kept trajectories (sdt traj filter --out)',
    },
    set: { type: 'string', arg: 'FILE', description: 'distill: a distillation set written by --write-set' },
    'write-set': {
      type: 'string',
      output: 'file',
      arg: 'FILE',
      description: 'distill: also write the distillation set here',
    },
    rounds: { type: 'number', min: 1, integer: true, arg: 'R', description: 'onpolicy: rounds', default: 3 },
    k: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'K',
      description: 'onpolicy: trajectories per prompt per round',
      default: 4,
    },
    'keep-top': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'onpolicy: trajectories kept per prompt',
      default: 1,
    },
    reward: {
      type: 'string',
      description: 'onpolicy: what counts as few steps',
      default: 'lev',
      choices: ['lev', 'tau'],
    },
    update: {
      type: 'string',
      description:
        'onpolicy: filter = distil the best --keep-top; awr = all accepted, weights exp(advantage/beta)',
      default: 'filter',
      choices: ['filter', 'awr'],
    },
    beta: {
      type: 'number',
      min: 0,
      minExclusive: true,
      description: 'onpolicy --update awr: advantage temperature',
      default: 1,
    },
    'skip-verify': { type: 'boolean', description: 'onpolicy: keep unverified trajectories too' },
    prompts: { type: 'string', arg: 'FILE', description: 'onpolicy: JSONL prompts' },
    suite: {
      type: 'string',
      arg: 'NAME',
      description: 'onpolicy: eval suite prompts (tests verify)',
      choices: Object.keys(SUITES),
    },
    'data-dir': SUITE_DATA_DIR_OPTION,
    dataset: {
      type: 'string',
      arg: 'DIR',
      description:
        'onpolicy: function prompts from a dataset: the train split to learn from, the validation split held out',
    },
    limit: {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'N',
      description: 'onpolicy: at most N prompts',
      default: 64,
    },
    'prompts-per-round': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description:
        'onpolicy: prompts sampled per round, round r taking the r-th window of N of the --limit prompts (0: all, every round)',
      default: 0,
    },
    heldout: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description:
        'onpolicy --dataset: validation-split prompts decoded greedily every round to judge the step reduction (0: none)',
      default: 32,
    },
    'heldout-prompts': {
      type: 'string',
      arg: 'FILE',
      description: 'onpolicy: JSONL held-out prompts (with --prompts or --suite)',
    },
    ...SAMPLER_OPTIONS,
    temperature: {
      type: 'number',
      min: 0,
      description: 'sampling temperature (onpolicy needs > 0 for distinct samples)',
      default: 0.8,
    },
    seed: {
      type: 'number',
      min: 0,
      integer: true,
      description: 'seed of batching, augmentation and sampling',
      default: 0,
    },
    threads: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'OpenMP threads of sdt-native train (0: default)',
      default: 0,
    },
  },
  examples: [
    'sdt train --stage distill --ckpt runs/demo/checkpoints/step-000400 --trajectories kept.arrow --anchor-dataset data/py --out runs/distill',
    'sdt train --stage onpolicy --ckpt runs/distill/checkpoints/step-000100 --dataset data/py --rounds 4 --steps 50 --out runs/onpolicy',
  ],
  async run(o) {
    const stage = str(o, 'stage');
    const bin = nativeBinary();
    const c = await common(o);
    const augment = {
      specials: c.specials,
      vocab: c.vocab,
      augmentShare: num(o, 'augment-share'),
      alpha: num(o, 'alpha'),
    };
    if (stage === 'distill') {
      const trajPath = optStr(o, 'trajectories');
      const setPath = optStr(o, 'set');
      if (!trajPath === !setPath)
        throw new UserError('sdt train --stage distill: give --trajectories or --set (one of them).');
      const examples = setPath
        ? await readDistillSet(setPath)
        : buildDistillSet(await readTrajectoryInput(trajPath!), { ...augment, seed: num(o, 'seed') });
      if (examples.length === 0) {
        process.stderr.write(
          `warning: no distillation states (no kept trajectory has a commit step); the stage trains on anchor data only\n`,
        );
      }
      const w = optStr(o, 'write-set');
      if (w) await writeDistillSet(w, examples);
      const res = await runDistillStage({
        ckpt: c.ckpt,
        examples,
        anchor: c.anchor,
        anchorShare: c.anchor.length ? num(o, 'anchor-share') : 0,
        specials: c.specials,
        seqLen: c.seqLen,
        batch: num(o, 'batch'),
        steps: num(o, 'steps'),
        lr: num(o, 'lr'),
        out: str(o, 'out'),
        bin,
        seed: num(o, 'seed'),
        threads: num(o, 'threads'),
        onEvent: (e) => {
          if (
            e.event === 'step' &&
            typeof e.step === 'number' &&
            (e.step % 10 === 0 || e.step === num(o, 'steps'))
          ) {
            process.stderr.write(
              `distill step ${e.step}/${num(o, 'steps')} loss ${Number(e.loss).toFixed(4)}\n`,
            );
          }
        },
      });
      process.stdout.write(
        `distilled ${examples.length} states (${res.rowsFromDistill} rows) + ${res.rowsFromAnchor} anchor rows over ${num(o, 'steps')} steps; ` +
          `loss ${res.losses[0]?.toFixed(4)} -> ${res.losses.at(-1)?.toFixed(4)}; checkpoint ${res.ckpt}\n`,
      );
      return 0;
    }
    const sources = ['prompts', 'suite', 'dataset'].filter((s) => optStr(o, s) !== undefined);
    if (sources.length !== 1)
      throw new UserError('sdt train --stage onpolicy: give exactly one of --prompts, --suite, --dataset.');
    const limit = num(o, 'limit');
    let prompts = optStr(o, 'prompts')
      ? (await readPromptFile(str(o, 'prompts'))).slice(0, limit)
      : optStr(o, 'suite')
        ? await suitePrompts(str(o, 'suite'), str(o, 'data-dir'), limit)
        : await datasetPrompts(str(o, 'dataset'), limit, 'train');
    const heldoutFile = optStr(o, 'heldout-prompts');
    let heldoutPrompts = heldoutFile
      ? await readPromptFile(heldoutFile)
      : optStr(o, 'dataset') && num(o, 'heldout') > 0
        ? await datasetPrompts(str(o, 'dataset'), num(o, 'heldout'), 'validation')
        : undefined;
    if (c.tokenizer) {
      // Long docstrings can fill a small model's context: leave those prompts out, and say how many.
      const tok = c.tokenizer;
      const fitContext = <T extends PromptItem>(items: T[], what: string): T[] => {
        const { kept, dropped } = promptsThatFit(items, (t) => tok.encode(t), c.context, num(o, 'max-new'));
        if (dropped > 0)
          process.stderr.write(
            `note: ${dropped} of ${items.length} ${what} prompts leave no room for --max-new ${num(o, 'max-new')} in the ${c.context}-token context; left out\n`,
          );
        if (kept.length === 0) throw new UserError(`no ${what} prompt fits the context; lower --max-new.`);
        return kept;
      };
      prompts = fitContext(prompts, 'training');
      if (heldoutPrompts) heldoutPrompts = fitContext(heldoutPrompts, 'held-out');
    }
    const suite = optStr(o, 'suite');
    const requireVerified = !bool(o, 'skip-verify');
    if (requireVerified && !c.tokenizer) {
      throw new UserError(
        `${c.ckpt} has no tokenizer.json: the verifier cannot read completions; add one or pass --skip-verify.`,
      );
    }
    const records = await runOnPolicy({
      ckpt: c.ckpt,
      out: str(o, 'out'),
      bin,
      device: deviceFromOptions(o),
      prompts,
      promptsPerRound: num(o, 'prompts-per-round'),
      heldoutPrompts,
      settings: settingsFromOptions(o),
      k: num(o, 'k'),
      rounds: num(o, 'rounds'),
      keepTop: num(o, 'keep-top'),
      reward: str(o, 'reward') as 'lev' | 'tau',
      update: str(o, 'update') as 'filter' | 'awr',
      beta: num(o, 'beta'),
      requireVerified,
      tokenizer: c.tokenizer,
      verifier: makeVerifier(
        suite ? await loadSuiteTasks(suite, str(o, 'data-dir')) : undefined,
        suite ? new SandboxPool({ concurrency: 2, limits: DEFAULT_LIMITS }) : undefined,
      ),
      ...augment,
      anchor: c.anchor,
      anchorShare: c.anchor.length ? num(o, 'anchor-share') : 0,
      validation: c.validation,
      stepsPerRound: num(o, 'steps'),
      batch: num(o, 'batch'),
      seqLen: c.seqLen,
      lr: num(o, 'lr'),
      seed: num(o, 'seed'),
      threads: num(o, 'threads'),
      onRound: (r) =>
        process.stderr.write(
          `round ${r.round} (step ${r.step}): pool ${r.forward_passes_per_token.toFixed(3)} forward passes/token, ${r.steps_per_block.toFixed(2)} steps/block, ` +
            `verifier ${(100 * r.verifier_pass_rate).toFixed(1)}%` +
            (r.heldout
              ? `; held-out ${r.heldout.forward_passes_per_token.toFixed(3)} passes/token, ${r.heldout.steps_per_block.toFixed(2)} steps/block, verifier ${(100 * r.heldout.verifier_pass_rate).toFixed(1)}%, distinct bigrams ${r.heldout.distinct_bigrams.toFixed(3)}`
              : '') +
            `; validation loss ${r.validation_loss?.toFixed(4) ?? 'n/a'}, kept ${r.kept}\n`,
        ),
    });
    const points = speedupPoints(records);
    const first = points[0];
    const last = points.at(-1)!;
    process.stdout.write(
      `${records.length - 1} rounds, measured on ${measuredOn(records) === 'heldout' ? 'held-out prompts (greedy)' : 'the training pool'}: ` +
        `forward passes/token ${first.forwardPassesPerToken.toFixed(3)} -> ${last.forwardPassesPerToken.toFixed(3)} ` +
        `(speedup x${last.speedup.toFixed(2)}), verifier ${(100 * first.verifierPassRate).toFixed(1)}% -> ${(100 * last.verifierPassRate).toFixed(1)}%; ` +
        `log ${join(str(o, 'out'), 'onpolicy.jsonl')}\n`,
    );
    return 0;
  },
};
