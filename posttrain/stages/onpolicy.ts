/**
 * `sdt train --stage onpolicy`: on-policy step reduction (docs/distill.md). Each round samples K trajectories
 * per prompt with the current model, scores them (|tau|, the Levenshtein surrogate, the verifier), keeps per
 * prompt the verified ones with the best reward (fewest steps, measured by the surrogate mean 1/d_lev by
 * default since |tau| itself is a step function) and distils them into the model, mixed with ordinary data
 * as a reference anchor. Every round appends a record to RUN/onpolicy.jsonl: forward passes per generated
 * token, steps per block, verifier pass rate, validation loss; `sdt report speedup RUN` plots them.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Progress } from '../../common/progress.ts';
import { EngineClient } from '../../engine/client.ts';
import type { CorruptSpecials } from '../../pipelines/corrupt/types.ts';
import type { EditVocabulary } from '../../pipelines/corrupt/vocab.ts';
import type { Tokenizer } from '../../pipelines/tokenizer/types.ts';
import { latestCheckpoint } from '../../schemas/checkpoint.ts';
import type { SampleSettings } from '../../schemas/engine.ts';
import type { Verifier } from '../../schemas/trajectory.ts';
import type { PromptItem } from '../sample/prompts.ts';
import { buildDistillSet, type DistillExample, distillExamples } from '../trajectories/distill.ts';
import { filterTrajectories, type ScoreKey } from '../trajectories/filter.ts';
import { generateTrajectories, readTrajectoryInput } from '../trajectories/generate.ts';
import { promptKey, type ScoredRow, scoreTrajectories, writeScored } from '../trajectories/score.ts';
import { maskedValidationLoss } from './anchor.ts';
import { runDistillStage } from './distill.ts';

export interface RoundRecord {
  round: number;
  /** Training steps done before this round's sampling (x axis of the speedup plot). */
  step: number;
  ckpt: string;
  trajectories: number;
  generated_tokens: number;
  forward_passes_per_token: number;
  steps_per_block: number;
  mean_tau: number;
  mean_lev_surrogate: number;
  verifier_pass_rate: number;
  validation_loss: number | null;
  kept: number;
  /** Mean reward of the kept trajectories (null in the final evaluation-only record). */
  kept_reward: number | null;
  train_loss_last: number | null;
  /**
   * The same metrics on held-out prompts, decoded greedily (temperature 0) with otherwise the same sampler
   * settings: the figures the step reduction is judged by. Absent when the run has no held-out prompts.
   */
  heldout?: HeldoutMetrics;
}

/** A record as onpolicy.jsonl holds it: plus the checkpoint the next round starts from (its own when it only
 * measured). */
type LoggedRound = RoundRecord & { next_ckpt?: string };

export interface HeldoutMetrics {
  prompts: number;
  generated_tokens: number;
  forward_passes_per_token: number;
  steps_per_block: number;
  verifier_pass_rate: number;
  /** Mean share of distinct token bigrams per completion: a model that collapses to repeating itself
   * decodes in few steps, and this falls with it. */
  distinct_bigrams: number;
}

/** Distinct bigrams over all bigrams of one completion (1 for fewer than two tokens). */
export function distinctBigramShare(tokens: ArrayLike<number>): number {
  if (tokens.length < 2) return 1;
  const seen = new Set<string>();
  for (let i = 1; i < tokens.length; i++) seen.add(`${tokens[i - 1]},${tokens[i]}`);
  return seen.size / (tokens.length - 1);
}

export interface OnPolicyOptions {
  ckpt: string;
  out: string;
  bin: string;
  /** Where the engine runs (sampling, validation loss); training stays on the CPU trainer. */
  device?: 'cpu' | 'cuda';
  prompts: (PromptItem & { tokens?: Int32Array })[];
  /**
   * Prompts each round samples: round r takes the r-th window of this size from `prompts` (wrapping), so
   * rounds see fresh tasks instead of relearning the same ones. 0 or absent: every prompt, every round.
   */
  promptsPerRound?: number;
  /** Held-out prompts measured every round (greedy); should share no source file with `prompts`. */
  heldoutPrompts?: (PromptItem & { tokens?: Int32Array })[];
  settings: SampleSettings;
  k: number;
  rounds: number;
  /** Kept trajectories per prompt. */
  keepTop: number;
  /** What "fewest steps" is measured by: the surrogate (default) or |tau|. */
  reward: 'lev' | 'tau';
  /** Keep only verifier-accepted trajectories (needs a tokenizer). */
  requireVerified: boolean;
  /**
   * filter: distil the best `keepTop` per prompt (reward-filtered distillation). awr: distil every accepted
   * trajectory with its loss weights scaled by advantageWeights (temperature `beta`).
   */
  update?: 'filter' | 'awr';
  beta?: number;
  /** Planted reward (tests, experiments): replaces `reward`; higher is better. */
  customReward?: (row: ScoredRow) => number;
  tokenizer?: Tokenizer;
  /** Judges completions (eval/verify.ts makeVerifier: syntax, and a suite's tests in a sandbox). */
  verifier?: Verifier;
  specials: CorruptSpecials;
  vocab: EditVocabulary;
  anchor: Int32Array[];
  anchorShare: number;
  validation: Int32Array[];
  stepsPerRound: number;
  batch: number;
  seqLen: number;
  lr: number;
  augmentShare: number;
  alpha: number;
  seed: number;
  threads?: number;
  onRound?: (r: RoundRecord) => void;
  /** No progress lines on stderr (tests). */
  quiet?: boolean;
  log?: (line: string) => void;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Round metrics of a scored pool. */
export function poolMetrics(
  rows: ScoredRow[],
): Pick<
  RoundRecord,
  | 'trajectories'
  | 'generated_tokens'
  | 'forward_passes_per_token'
  | 'steps_per_block'
  | 'mean_tau'
  | 'mean_lev_surrogate'
  | 'verifier_pass_rate'
> {
  const tokens = rows.reduce((a, r) => a + r.tokens.length, 0);
  const passes = rows.reduce((a, r) => a + r.forwardPasses, 0);
  const perBlock = rows.map((r) => {
    const blocks = new Set(r.steps.map((s) => s.block)).size;
    return blocks > 0 ? r.steps.length / blocks : 0;
  });
  const verified = rows.filter((r) => r.verifier !== null);
  return {
    trajectories: rows.length,
    generated_tokens: tokens,
    forward_passes_per_token: tokens > 0 ? passes / tokens : 0,
    steps_per_block: mean(perBlock),
    mean_tau: mean(rows.map((r) => r.tau ?? r.steps.length)),
    mean_lev_surrogate: mean(rows.map((r) => r.levSurrogate ?? 0)),
    verifier_pass_rate: verified.length ? mean(verified.map((r) => r.verifier as number)) : 0,
  };
}

/** Per prompt the best `keepTop` by reward; the custom reward enters through the ELBO-free `elbo` slot. */
export function selectForDistillation(
  rows: ScoredRow[],
  o: Pick<OnPolicyOptions, 'keepTop' | 'reward' | 'requireVerified' | 'customReward'>,
) {
  const require = o.requireVerified ? [{ key: 'verifier' as const, op: '>=' as const, value: 1 }] : [];
  if (o.customReward) {
    const reward = o.customReward;
    // Rank by the planted reward: carry it in the jump slot (higher is better) of a copy.
    const copies: ScoredRow[] = rows.map((r) => ({ ...r, extras: { ...r.extras, levMeanJump: reward(r) } }));
    const res = filterTrajectories(copies, { by: 'jump', topK: o.keepTop, require });
    return {
      kept: res.kept.map((c) => rows[copies.indexOf(c)]),
      rewards: res.kept.map((c) => c.extras.levMeanJump as number),
    };
  }
  const by: ScoreKey = o.reward === 'tau' ? 'tau' : 'lev';
  const res = filterTrajectories(rows, { by, topK: o.keepTop, require });
  return {
    kept: res.kept,
    rewards: res.kept.map((r) => -((by === 'tau' ? r.tau : r.levSurrogate) as number)),
  };
}

/** The reward of a scored trajectory: the planted one, or minus the step measure. */
export function rewardOf(o: Pick<OnPolicyOptions, 'reward' | 'customReward'>): (r: ScoredRow) => number {
  if (o.customReward) return o.customReward;
  return o.reward === 'tau' ? (r) => -(r.tau ?? r.steps.length) : (r) => -(r.levSurrogate ?? 0);
}

/**
 * Advantage weights per trajectory id: exp(A / beta) with A = reward - mean reward of the prompt's
 * trajectories, normalised to mean 1 within the prompt. Weights stay positive: the native trainer divides by
 * the sum of the loss weights, which a signed policy gradient could drive to zero.
 */
export function advantageWeights(
  rows: ScoredRow[],
  reward: (r: ScoredRow) => number,
  beta: number,
): Map<string, number> {
  const groups = new Map<string, ScoredRow[]>();
  for (const r of rows) {
    const k = promptKey(r);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out = new Map<string, number>();
  for (const g of groups.values()) {
    const rs = g.map(reward);
    const m = mean(rs);
    const e = rs.map((x) => Math.exp((x - m) / beta));
    const z = mean(e);
    g.forEach((r, i) => {
      out.set(r.id, e[i] / z);
    });
  }
  return out;
}

interface SampleRun {
  prompts: OnPolicyOptions['prompts'];
  settings: SampleSettings;
  k: number;
  /** Trajectories go to DIR/NAME (shards), scores to DIR/SCORED. */
  name: string;
  scored: string;
  label: string;
}

/** Samples trajectories with the round's engine, scores them (surrogate, |tau|, verifier), writes the scores. */
async function sampleAndScore(
  o: OnPolicyOptions,
  client: EngineClient,
  dir: string,
  run: SampleRun,
): Promise<ScoredRow[]> {
  const progress = o.quiet
    ? undefined
    : new Progress({
        label: `${basename(dir)} ${run.label}`,
        total: run.prompts.length * run.k,
        unit: 'trajectories',
      });
  await generateTrajectories({
    client,
    prompts: run.prompts,
    settings: run.settings,
    k: run.k,
    outDir: join(dir, run.name),
    shardPrompts: 1 << 20,
    batch: 16,
    onProgress: (n) => progress?.tick(n),
  });
  progress?.done();
  const scored = await scoreTrajectories(await readTrajectoryInput(join(dir, run.name)), {
    tokenizer: o.tokenizer,
    verifier: o.verifier,
    noVerifier: !o.tokenizer,
    // The mask id for the surrogate comes from the checkpoint; the ELBO is not needed for the reward.
    ckpt: undefined,
    maskId: o.specials.mask,
  });
  await writeScored(join(dir, run.scored), scored);
  return scored;
}

/** The prompts round `round` samples: the round's window of `perRound` prompts, wrapping around the list. */
export function roundPrompts<T>(prompts: T[], perRound: number | undefined, round: number): T[] {
  if (!perRound || perRound >= prompts.length) return prompts;
  const start = round * perRound;
  return Array.from({ length: perRound }, (_, i) => prompts[(start + i) % prompts.length]);
}

function samplePool(
  o: OnPolicyOptions,
  engine: EngineClient,
  dir: string,
  round: number,
): Promise<ScoredRow[]> {
  const settings = { ...o.settings, seed: o.seed + 1000 * round };
  return sampleAndScore(o, engine, dir, {
    prompts: roundPrompts(o.prompts, o.promptsPerRound, round),
    settings,
    k: o.k,
    name: 'pool',
    scored: 'scored.arrow',
    label: 'pool',
  });
}

/** Greedy decoding of the held-out prompts with the round's model; their metrics. */
async function measureHeldout(
  o: OnPolicyOptions,
  engine: EngineClient,
  dir: string,
): Promise<HeldoutMetrics> {
  const prompts = o.heldoutPrompts!;
  const settings = { ...o.settings, temperature: 0, seed: 0 };
  const scored = await sampleAndScore(o, engine, dir, {
    prompts,
    settings,
    k: 1,
    name: 'heldout',
    scored: 'heldout.arrow',
    label: 'held-out',
  });
  const m = poolMetrics(scored);
  return {
    prompts: prompts.length,
    generated_tokens: m.generated_tokens,
    forward_passes_per_token: m.forward_passes_per_token,
    steps_per_block: m.steps_per_block,
    verifier_pass_rate: m.verifier_pass_rate,
    distinct_bigrams: mean(scored.map((r) => distinctBigramShare(r.tokens))),
  };
}

/** Runs the rounds; resumes after the last round recorded in RUN/onpolicy.jsonl. */
export async function runOnPolicy(o: OnPolicyOptions): Promise<RoundRecord[]> {
  await mkdir(o.out, { recursive: true });
  const logPath = join(o.out, 'onpolicy.jsonl');
  const records: RoundRecord[] = existsSync(logPath)
    ? (await readFile(logPath, 'utf8'))
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as RoundRecord)
    : [];
  // A run extended with more --rounds: its last record only measured the final model, so that round
  // becomes a training round (else it would be measured twice and one round of training lost).
  const last = records.at(-1) as LoggedRound | undefined;
  if (last && last.next_ckpt === last.ckpt && last.round < o.rounds) {
    records.pop();
    await writeFile(logPath, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  let ckpt = records.length ? nextCkpt(records) : o.ckpt;
  let step = records.length ? nextStep(records, o.stepsPerRound) : 0;
  for (let round = records.length; round <= o.rounds; round++) {
    const dir = join(o.out, `round-${String(round).padStart(3, '0')}`);
    // One engine per round's checkpoint: the pool, the held-out prompts and the validation loss.
    const engine = await EngineClient.start({ ckpt, binary: o.bin, device: o.device });
    let pool: ScoredRow[];
    let heldout: HeldoutMetrics | undefined;
    let validation: number | null;
    try {
      pool = await samplePool(o, engine, dir, round);
      heldout = o.heldoutPrompts?.length ? await measureHeldout(o, engine, dir) : undefined;
      validation = await maskedValidationLoss(engine, o.validation, o.specials);
    } finally {
      await engine.close();
    }
    const metrics = poolMetrics(pool);
    // The last record only evaluates the final model.
    const train = round < o.rounds;
    let kept: ScoredRow[] = [];
    let rewards: number[] = [];
    let trained: { ckpt: string; losses: number[] } | null = null;
    if (train) {
      const distillOpts = {
        specials: o.specials,
        vocab: o.vocab,
        augmentShare: o.augmentShare,
        alpha: o.alpha,
        seed: o.seed + round,
      };
      let examples: DistillExample[];
      if (o.update === 'awr') {
        kept = selectForDistillation(pool, { ...o, keepTop: o.k }).kept;
        const reward = rewardOf(o);
        rewards = kept.map(reward);
        const w = advantageWeights(kept, reward, o.beta ?? 1);
        examples = kept.flatMap((r) =>
          distillExamples(r, distillOpts).map((e) => ({
            ...e,
            weight: e.weight.map((x) => x * w.get(r.id)!),
          })),
        );
      } else {
        ({ kept, rewards } = selectForDistillation(pool, o));
        examples = buildDistillSet(kept, distillOpts);
      }
      if (examples.length === 0 && o.anchor.length === 0) {
        o.log?.(`round ${round}: nothing kept and no anchor data; the model is unchanged`);
      } else if (latestCheckpoint(join(dir, 'train'))?.step === o.stepsPerRound) {
        // Killed after this round's training but before its record: keep the finished weights.
        trained = { ckpt: latestCheckpoint(join(dir, 'train'))!.path, losses: [] };
      } else {
        // A partial training of this round (killed mid-way) is redone from the round's start.
        await rm(join(dir, 'train'), { recursive: true, force: true });
        const progress = o.quiet
          ? undefined
          : new Progress({ label: `${basename(dir)} train`, total: o.stepsPerRound, unit: 'steps' });
        trained = await runDistillStage({
          onEvent: (e) => {
            if (e.event !== 'step') return;
            progress?.note(`loss ${Number(e.loss).toFixed(4)}`);
            progress?.tick();
          },
          ckpt,
          examples,
          anchor: o.anchor,
          anchorShare: examples.length === 0 ? 1 : o.anchorShare,
          specials: o.specials,
          seqLen: o.seqLen,
          batch: o.batch,
          steps: o.stepsPerRound,
          lr: o.lr,
          out: join(dir, 'train'),
          bin: o.bin,
          seed: o.seed + round,
          threads: o.threads,
        });
        progress?.done();
      }
    }
    const rec: RoundRecord = {
      round,
      step,
      ckpt,
      ...metrics,
      validation_loss: validation,
      kept: kept.length,
      kept_reward: train ? mean(rewards) : null,
      train_loss_last: trained ? (trained.losses.at(-1) ?? null) : null,
      ...(heldout ? { heldout } : {}),
    };
    await appendFile(logPath, `${JSON.stringify({ ...rec, next_ckpt: trained?.ckpt ?? ckpt })}\n`);
    records.push(rec);
    o.onRound?.(rec);
    if (trained) {
      ckpt = trained.ckpt;
      step += o.stepsPerRound;
    }
  }
  return records;
}

function nextCkpt(records: RoundRecord[]): string {
  const last = records.at(-1) as LoggedRound;
  return last.next_ckpt ?? last.ckpt;
}

function nextStep(records: RoundRecord[], stepsPerRound: number): number {
  const last = records.at(-1) as LoggedRound;
  return last.next_ckpt && last.next_ckpt !== last.ckpt ? last.step + stepsPerRound : last.step;
}
