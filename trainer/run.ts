/**
 * One `sdt train` run: prepare the run directory, start `sdt-native train`, stream the corrupted batches into
 * it (validation batches at the validation cadence), turn its events into progress, logs, a loss plot and a
 * summary. A resumed run restarts the feed at the stream position saved in the latest checkpoint.
 *
 * In a data-parallel run every rank runs this with its own part of the stream (feed-part.ts) and its own
 * sdt-native, which sum the gradients over the ranks; rank 0 alone sends validation batches and writes the
 * run directory's files (its checkpoints, logs, plot and summary). Rank r > 0 keeps only its native config
 * and log under RUN/ranks/rank-R/.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../common/errors.ts';
import { atomicWriteFile, atomicWriteJson } from '../common/fs.ts';
import { Progress } from '../common/progress.ts';
import { type TrainConfig, totalSteps } from './config.ts';
import { editStageStart, stageAt } from './curriculum.ts';
import type { TrainData } from './data.ts';
import type { FeedContext } from './feed.ts';
import { partLayout } from './feed-part.ts';
import { FeedPool } from './feed-pool.ts';
import { renderLossPlot } from './loss-plot.ts';
import { countParameters } from './model-size.ts';
import { nativeTrainConfig } from './native-config.ts';
import { type NativeEvent, NativeProcess } from './native-process.ts';
import { type Ranks, ranksFromEnv } from './ranks.ts';
import { resumePoint as findResumePoint, type ResumePoint } from './resume.ts';
import { type EvalRecord, type LogRecord, RunLog, readLog, type StepRecord } from './run-log.ts';
import { encodeEnd, encodeEval, encodeHeader, encodeTrain } from './stream-encoder.ts';
import { unigramCrossEntropyBits, unigramEntropyBits } from './unigram.ts';
import { buildValidationFrames, evalGroups, type ValidationFrame } from './validation.ts';

export interface RunOptions {
  cfg: TrainConfig;
  data: TrainData;
  runDir: string;
  nativeBin: string;
  resume: boolean;
  /** Stop (with a checkpoint) after this many steps of this invocation; 0: run to the end. */
  stopAfterSteps?: number;
  quiet?: boolean;
  /** Extra stderr sink for the native human log (the run also keeps RUN/native.log). */
  onNativeLog?: (line: string) => void;
  /** Where sdt-native train runs forward, backward and the update; default cpu. */
  device?: 'cpu' | 'cuda';
  /** This process's rank (trainer/ranks.ts); default: from the environment, as sdt-native reads it. */
  ranks?: Ranks;
}

export interface RunSummary {
  status: 'complete' | 'stopped' | 'failed';
  objective: string;
  steps_done: number;
  total_steps: number;
  tokens_seen: number;
  elapsed_s: number;
  final_validation: Record<string, number>;
  unigram_entropy_bits: number;
  /** The training unigram distribution's cross-entropy on the validation tokens. */
  unigram_validation_xent_bits: number;
  parameters: number;
  last_checkpoint: string | null;
  message?: string;
}

const LN2 = Math.log(2);

/**
 * Whether validation runs once `step` steps are done. sdt-native stops reading the stream when it reaches
 * total_steps, so frames sent after the last step are never read: the final validation runs after step N-1,
 * just before the last step's batches (the eval records carry the step they measured).
 */
export function isEvalStep(cfg: TrainConfig, step: number): boolean {
  const every = cfg.validation.every;
  const last = totalSteps(cfg) - 1;
  return step >= 0 && step <= last && (step === last || (every > 0 && step % every === 0));
}

export async function runTraining(opts: RunOptions): Promise<RunSummary> {
  const { cfg, data, runDir } = opts;
  // sdt-native reads the same variables: the feed must cut the stream for the world it will join.
  const ranks = opts.ranks ?? ranksFromEnv();
  const lead = ranks.rank === 0;
  if (ranks.world > 1 && opts.device !== 'cuda') {
    throw new UserError(
      `rank ${ranks.rank} of ${ranks.world} (from the ${ranks.source} variables): a world of more than one rank needs --device cuda (gradients are summed across ranks by NCCL on the GPUs; sdt has no CPU collective). Train on CPU with one rank (unset RANK/WORLD_SIZE), or run the ranks on GPUs with --device cuda.`,
    );
  }
  const steps = totalSteps(cfg);
  // Frames per step of this rank's part of the stream (every rank has as many); cfg's micro_batches in a world of one.
  const micro = partLayout(cfg, ranks.world).framesPerStep;
  const totalFrames = steps * micro;
  const started = performance.now();

  let resumePoint: ResumePoint | undefined;
  if (opts.resume) {
    resumePoint = await findResumePoint(runDir);
    if (!resumePoint) {
      throw new UserError(
        `${runDir}: no complete checkpoint to resume from (checkpoints/step-*/COMPLETE missing); start a new run without --resume.`,
      );
    }
  }
  const startStep = resumePoint?.step ?? 0;
  const startFrame = resumePoint?.streamPosition ?? 0;
  if (startFrame !== startStep * micro) {
    throw new UserError(
      `${resumePoint?.path}: stream position ${startFrame} does not match step ${startStep} with ${micro} frames per step${ranks.world > 1 ? ` on each of ${ranks.world} ranks` : ''}; the checkpoint belongs to another config, or to a run with a number of ranks that cuts steps into other frames (resume with the ranks it was trained with).`,
    );
  }

  // Rank r > 0 keeps its own files apart: the run directory's are rank 0's.
  const ownDir = lead ? runDir : join(runDir, 'ranks', `rank-${ranks.rank}`);
  if (lead) await atomicWriteJson(join(runDir, 'config.json'), cfg);
  else mkdirSync(ownDir, { recursive: true });
  const nativeCfgPath = join(ownDir, 'native-train.json');
  await atomicWriteJson(
    nativeCfgPath,
    nativeTrainConfig(
      cfg,
      { vocabSize: data.vocabSize, specials: data.specials, tokenizerPath: resolve(data.tokenizerPath) },
      micro,
    ),
  );
  const skip = [data.specials.pad, data.specials.bos];
  const unigram = unigramEntropyBits(data.train, skip);
  const unigramVal = unigramCrossEntropyBits(data.train, data.validation, skip, data.vocabSize);
  const params = countParameters(cfg.model, data.vocabSize).total;
  const runLog = lead ? await RunLog.open(runDir, resumePoint ? startStep : undefined) : undefined;
  const log = { write: (r: LogRecord): void => runLog?.write(r) };
  log.write({
    type: resumePoint ? 'resume' : 'start',
    step: startStep,
    time: Date.now() / 1000,
    parameters: params,
    unigram_entropy_bits: unigram,
    unigram_validation_xent_bits: unigramVal,
    train_windows: data.train.count,
    validation_windows: data.validation.count,
  });

  const ctx: FeedContext = {
    cfg,
    specials: data.specials,
    editVocab: data.editVocab,
    train: data.train,
    part: { rank: ranks.rank, world: ranks.world },
  };
  const groups = evalGroups(cfg.objective);
  const valFrames: ValidationFrame[] = groups.flatMap((g) => buildValidationFrames(ctx, data.validation, g));
  const valBytes = valFrames.map((f) => encodeEval(f.batch, f.group));

  const groupTotals = new Map<string, { weightSum: number; denominator: number }>();
  for (const f of valFrames) {
    const t = groupTotals.get(f.group) ?? { weightSum: 0, denominator: 0 };
    for (const w of f.batch.weight) t.weightSum += w;
    t.denominator += f.denominator;
    groupTotals.set(f.group, t);
  }
  let stepsDone = startStep;
  let tokensSeen = resumePoint?.tokensSeen ?? 0;
  let lastCheckpoint: string | null = resumePoint?.path ?? null;
  let nativeError: string | undefined;
  const finalVal: Record<string, number> = {};
  const progress = new Progress({
    label: 'train',
    total: steps - startStep,
    unit: 'steps',
    quiet: opts.quiet || !lead,
  });
  let lastLoss = Number.NaN;

  const onEvent = (ev: NativeEvent): void => {
    const now = Date.now() / 1000;
    if (ev.event === 'step') {
      const step = Number(ev.step);
      const rec: StepRecord = {
        type: 'step',
        step,
        loss: Number(ev.loss),
        lr: Number(ev.lr),
        grad_norm: Number(ev.grad_norm),
        tokens: Number(ev.tokens),
        tokens_per_s: Number(ev.tokens_per_s),
        stage: stageAt(cfg, step - 1),
        time: now,
      };
      if (ev.skipped) rec.skipped = true;
      log.write(rec);
      if (step === editStageStart(cfg) && cfg.objective === 'diffusion' && step < steps) {
        log.write({ type: 'stage', step, time: now, stage: 'edit' });
      }
      stepsDone = step;
      tokensSeen = rec.tokens;
      lastLoss = rec.loss;
      progress.note(
        `step ${step}/${steps}  loss ${rec.loss.toFixed(3)}  ${Math.round(rec.tokens_per_s)} tok/s  ${rec.stage}`,
      );
      progress.tick();
    } else if (ev.event === 'eval') {
      // sdt-native sums every eval frame of a group sent between two train frames into one event whose loss
      // is sum(w * CE) / sum(w); the metric wants sum(w * CE) / (tokens it is per).
      const group = String(ev.group);
      const totals = groupTotals.get(group);
      if (!totals) return;
      const loss = (Number(ev.loss) * totals.weightSum) / totals.denominator;
      const rec: EvalRecord = {
        type: 'eval',
        step: Number(ev.step),
        group,
        loss,
        bits_per_token: loss / LN2,
        tokens: totals.denominator,
        time: now,
      };
      log.write(rec);
      finalVal[group] = rec.bits_per_token;
      if (!opts.quiet && lead)
        process.stderr.write(
          `validation @ step ${rec.step}: ${group} ${rec.bits_per_token.toFixed(3)} bits/token (unigram: entropy ${unigram.toFixed(3)}, on validation ${unigramVal.toFixed(3)})\n`,
        );
    } else if (ev.event === 'checkpoint') {
      lastCheckpoint = String(ev.path);
      log.write({ type: 'checkpoint', step: Number(ev.step), time: now, path: lastCheckpoint });
    } else if (ev.event === 'error') {
      nativeError = String(ev.message);
      log.write({ type: 'error', step: stepsDone, time: now, message: nativeError });
    }
  };

  const args = ['train', '--stream', '-', '--config', nativeCfgPath, '--out', runDir];
  if (opts.device && opts.device !== 'cpu') args.push('--device', opts.device);
  if (resumePoint) args.push('--resume');
  else if (cfg.init_from) args.push('--init-from', cfg.init_from);
  if (opts.stopAfterSteps && opts.stopAfterSteps > 0)
    args.push('--stop-after-steps', String(opts.stopAfterSteps));
  const nativeLog = join(ownDir, 'native.log');
  const native = new NativeProcess(opts.nativeBin, args, onEvent, {
    env: { ...process.env, OMP_NUM_THREADS: String(cfg.threads) },
    onStderr: (line) => {
      appendFileSync(nativeLog, `${line}\n`);
      opts.onNativeLog?.(line);
    },
  });
  const onSigint = (): void => {
    if (!opts.quiet) process.stderr.write('\ninterrupt: asking sdt-native to checkpoint and stop...\n');
    native.interrupt();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const pool = new FeedPool(ctx, cfg.workers);
  // Validation runs on rank 0 alone: the ranks' weights are equal, and eval frames take no part in the sums.
  const sendEval = async (): Promise<boolean> => {
    if (!lead) return true;
    for (const bytes of valBytes) if (!(await native.write(bytes))) return false;
    return true;
  };
  try {
    let ok = await native.write(encodeHeader(startFrame));
    // A stopped run may not have evaluated at the step it stopped on (its eval frames came after the stop).
    const evaluated = readLog(runDir).some((r) => r.type === 'eval' && r.step === startStep);
    if (ok && isEvalStep(cfg, startStep) && !evaluated) ok = await sendEval();
    if (ok) {
      for await (const frame of pool.frames(startFrame, totalFrames)) {
        if (native.wasInterrupted) break;
        if (!(await native.write(encodeTrain(frame.batch, frame.step, cfg)))) break;
        const stepEnd = (frame.frame + 1) % micro === 0;
        if (stepEnd && isEvalStep(cfg, frame.step + 1) && !(await sendEval())) break;
      }
      if (native.alive && !native.wasInterrupted) await native.write(encodeEnd());
    }
  } finally {
    native.endInput();
    await pool.close();
  }
  const exit = await native.exit;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  progress.done();

  const status: RunSummary['status'] =
    exit.code !== 0 ? 'failed' : stepsDone >= steps ? 'complete' : 'stopped';
  const summary: RunSummary = {
    status,
    objective: cfg.objective,
    steps_done: stepsDone,
    total_steps: steps,
    tokens_seen: tokensSeen,
    elapsed_s: (performance.now() - started) / 1000,
    final_validation: lastValidation(runDir, finalVal),
    unigram_entropy_bits: unigram,
    unigram_validation_xent_bits: unigramVal,
    parameters: params,
    last_checkpoint: lastCheckpoint,
  };
  if (status === 'failed') {
    const why = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
    summary.message = `sdt-native ${why}${nativeError ? `: ${nativeError}` : ''}`;
  }
  log.write({ type: 'end', step: stepsDone, time: Date.now() / 1000, status, last_loss: lastLoss });
  if (lead) {
    await atomicWriteJson(join(runDir, 'summary.json'), summary);
    await atomicWriteFile(
      join(runDir, 'loss.svg'),
      renderLossPlot(readLog(runDir), cfg, unigram, unigramVal),
    );
  }
  if (status === 'failed') {
    const tail = native.stderrTail();
    throw new UserError(
      `${summary.message}. Last lines of its log:\n${tail.map((l) => `  ${l}`).join('\n')}\n` +
        `The run directory ${runDir} keeps its checkpoints${lastCheckpoint ? ` (latest: ${lastCheckpoint})` : ''}; continue with \`sdt train --resume ${runDir}\`.`,
    );
  }
  return summary;
}

/** The latest validation value per group over the whole log (a resumed run keeps the earlier ones). */
function lastValidation(runDir: string, fromThisRun: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of readLog(runDir)) if (r.type === 'eval') out[r.group] = r.bits_per_token;
  return { ...out, ...fromThisRun };
}
