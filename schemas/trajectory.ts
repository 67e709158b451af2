/**
 * The trajectory contract (docs/formats.md, docs/distill.md): one Arrow row per generation, written by
 * `sdt sample --record-trajectory` and later scored and filtered by the distillation pipeline.
 * Steps are stored flat: step i changed commit entries [step_offsets[i], step_offsets[i+1]).
 * Positions count from the first generated token (0 = the token right after the prompt).
 */
export const TRAJECTORY_SCHEMA_VERSION = 1;

/** commit: masked positions got tokens; remask: committed positions went back to <|mask|>; revise: tokens replaced. */
export const STEP_KINDS = ['commit', 'remask', 'revise'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export interface TrajectoryStep {
  block: number;
  /** Index of the step inside its block. */
  step: number;
  kind: StepKind;
  positions: number[];
  tokens: number[];
  confidences: number[];
}

export interface TrajectoryRow {
  id: string;
  /** Checkpoint directory (or "random-init:SEED:CONFIG") that produced it. */
  checkpoint: string;
  prompt: Int32Array;
  /** Generated tokens up to (not including) <|eos|>. */
  tokens: Int32Array;
  /** Detokenized `tokens`, for reading; empty when no tokenizer was at hand. */
  text: string;
  eos: boolean;
  steps: TrajectoryStep[];
  forwardPasses: number;
  /** The sampler settings as JSON (the serve request fields, minus the prompt). */
  settings: string;
  /** Scores, null until scored: ELBO of the final tokens, Levenshtein-jump surrogate, |tau|, verifier. */
  elbo: number | null;
  levSurrogate: number | null;
  tau: number | null;
  verifier: number | null;
}

/**
 * Arrow columns, in order:
 *   schema_version: Int32, id: Utf8, checkpoint: Utf8, prompt: List<Int32>, tokens: List<Int32>, text: Utf8,
 *   eos: Bool, forward_passes: Int32, settings: Utf8 (JSON),
 *   step_block: List<Int32>, step_index: List<Int32>, step_kind: List<Utf8>, step_offsets: List<Int32>,
 *   positions: List<Int32>, step_tokens: List<Int32>, confidences: List<Float32>,
 *   elbo: Float64?, lev_surrogate: Float64?, tau: Int32?, verifier: Float64?
 */
export const TRAJECTORY_COLUMNS = [
  'schema_version',
  'id',
  'checkpoint',
  'prompt',
  'tokens',
  'text',
  'eos',
  'forward_passes',
  'settings',
  'step_block',
  'step_index',
  'step_kind',
  'step_offsets',
  'positions',
  'step_tokens',
  'confidences',
  'elbo',
  'lev_surrogate',
  'tau',
  'verifier',
] as const;

/** What the verifier decided about one completion (docs/distill.md). */
export interface Verdict {
  syntaxOk: boolean;
  /** null: the prompt carries no tests. */
  testsPass: boolean | null;
}

/** The `verifier` column's value: 1 when everything that could be checked passed, else 0. */
export const verdictValue = (v: Verdict): number => (v.syntaxOk && v.testsPass !== false ? 1 : 0);

/**
 * The verifier post-training receives as a parameter (eval/verify.ts makeVerifier builds one): the prompt text,
 * the completion, the trajectory's prompt key (an eval task id when the prompts came from a suite) and whether
 * generation stopped at its token limit.
 */
export type Verifier = (
  prompt: string,
  completion: string,
  promptKey: string,
  hitLimit: boolean,
) => Promise<Verdict>;
