/**
 * The train config: its schema, its defaults, its presets and its validation, in one place. The CLI options of
 * `sdt train` are generated from FIELDS below, so `--help` shows the same defaults the config file gets.
 */
import { readFile } from 'node:fs/promises';
import type { OptionSpec, OptionValues } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';

export type Objective = 'diffusion' | 'ar';
export type EditTargets = 'positional' | 'aligned';

export interface ModelShape {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  tie_word_embeddings: boolean;
  rope_theta: number;
  rms_norm_eps: number;
}

/** Attention of a diffusion model; the AR objective is always causal. */
export type DiffusionAttention = 'bidirectional' | 'block';

export interface TrainConfig {
  model: ModelShape & {
    preset: string;
    /**
     * block: causal between blocks of `block_size` (counted from position 0), bidirectional inside, and the
     * mask rate drawn per block (block-clipped), so the sampler's KV cache is exact for the checkpoint.
     */
    attention_mode: DiffusionAttention;
    block_size: number;
  };
  data: {
    /** A dataset directory written by `sdt data build`. */
    dataset: string;
    seq_len: number;
  };
  objective: Objective;
  curriculum: {
    /** Fraction of the steps trained with mask corruption only; the rest mixes in edits. */
    mask_fraction: number;
    /** In the edit stage, the probability that an example is edit-corrupted (else masked). */
    edit_mix: number;
    mask_eps: number;
    edit_alpha_max: number;
    edit_targets: EditTargets;
    /** Mask whole tree-sitter spans (structure-aware) instead of uniform tokens. */
    structure: boolean;
    /** Mask-ratio warm-up: t ~ U(0, cap) with the cap growing linearly from 0.01 to 1 over this many steps. */
    mask_warmup_steps: number;
    /** Block attention: blocks before a random block stay clean, as earlier blocks are in decoding. */
    clean_prefix: boolean;
    /**
     * Block attention: each row holds the noisy sequence then the clean one, and every noisy block attends to
     * the clean blocks before it (AttentionMode::BlockTwoStream), so every block trains as it is decoded.
     */
    two_stream: boolean;
    /** Block attention: documents start at block boundaries and their last block is filled with <|eos|>. */
    align_blocks: boolean;
    /** Block attention: the probability that a block masks a suffix (a clean prefix, the rest masked). */
    suffix_masks: number;
  };
  batch: {
    /** Sequences per optimizer step (all micro-batches together). */
    batch_size: number;
    micro_batches: number;
  };
  schedule: {
    lr: number;
    min_lr: number;
    warmup_steps: number;
    weight_decay: number;
    clip: number;
    beta1: number;
    beta2: number;
  };
  /** Optimizer steps; 0 means: derive from `tokens`. */
  steps: number;
  /** Tokens to see (used when steps is 0): steps = ceil(tokens / (batch_size * seq_len)). */
  tokens: number;
  checkpoint: { every: number; keep: number };
  validation: { every: number; batches: number };
  seed: number;
  /** OpenMP threads of the native trainer. */
  threads: number;
  /** Worker threads that corrupt examples for the feed. */
  workers: number;
  out: string;
  /** Start from this checkpoint's weights (e.g. an AR model adapted to diffusion); '' for a random init. */
  init_from: string;
}

/** Model size presets; explicit fields override them. */
export const PRESETS: Record<string, ModelShape> = {
  tiny: {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
  },
  demo: {
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    tie_word_embeddings: false,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
  },
  small: {
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 6,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    tie_word_embeddings: true,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
  },
};

type FieldType = 'int' | 'number' | 'boolean' | 'string';

interface FieldSpec {
  /** Dotted path in the config, e.g. "schedule.lr". */
  path: string;
  /** CLI flag without dashes. */
  flag: string;
  type: FieldType;
  description: string;
  default: number | boolean | string;
  choices?: readonly string[];
  /** Inclusive lower bound / exclusive-or-inclusive upper bound checks. */
  min?: number;
  minExclusive?: boolean;
  max?: number;
  /** A string field that may be empty (meaning: not set). */
  optional?: boolean;
}

const MODEL_FIELDS: (keyof ModelShape)[] = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'tie_word_embeddings',
  'rope_theta',
  'rms_norm_eps',
];

const MODEL_FLAGS: Record<keyof ModelShape, string> = {
  hidden_size: 'hidden-size',
  intermediate_size: 'intermediate-size',
  num_hidden_layers: 'layers',
  num_attention_heads: 'heads',
  num_key_value_heads: 'kv-heads',
  tie_word_embeddings: 'tie-embeddings',
  rope_theta: 'rope-theta',
  rms_norm_eps: 'rms-norm-eps',
};

/** Every config field, its flag, type, bounds and default. */
export const FIELDS: FieldSpec[] = [
  {
    path: 'model.preset',
    flag: 'model',
    type: 'string',
    description: 'model size preset; explicit model fields override it',
    default: 'demo',
    choices: Object.keys(PRESETS),
  },
  ...MODEL_FIELDS.map((k): FieldSpec => {
    const v = PRESETS.demo[k];
    const isBool = typeof v === 'boolean';
    const isFloat = k === 'rope_theta' || k === 'rms_norm_eps';
    return {
      path: `model.${k}`,
      flag: MODEL_FLAGS[k],
      type: isBool ? 'boolean' : isFloat ? 'number' : 'int',
      description: `model ${k}, overrides the preset`,
      default: v,
      ...(isBool ? {} : { min: 0, minExclusive: true }),
    };
  }),
  {
    path: 'model.attention_mode',
    flag: 'attention',
    type: 'string',
    description:
      'diffusion attention: bidirectional, or block (causal between blocks, bidirectional inside, mask rate per block; an exact KV cache when sampling). --objective ar is causal',
    default: 'bidirectional',
    choices: ['bidirectional', 'block'],
  },
  {
    path: 'model.block_size',
    flag: 'block-size',
    type: 'int',
    description: 'block length of --attention block (sample with the same --block)',
    default: 32,
    min: 1,
  },
  {
    path: 'data.dataset',
    flag: 'dataset',
    type: 'string',
    description: 'dataset directory written by `sdt data build`',
    default: 'runs/data',
  },
  {
    path: 'data.seq_len',
    flag: 'seq-len',
    type: 'int',
    description: 'tokens per sequence',
    default: 256,
    min: 2,
  },
  {
    path: 'objective',
    flag: 'objective',
    type: 'string',
    description: 'diffusion (mask then edit curriculum) or ar (causal next-token baseline)',
    default: 'diffusion',
    choices: ['diffusion', 'ar'],
  },
  {
    path: 'curriculum.mask_fraction',
    flag: 'mask-fraction',
    type: 'number',
    description: 'fraction of steps in the mask-only stage',
    default: 0.8,
    min: 0,
    max: 1,
  },
  {
    path: 'curriculum.edit_mix',
    flag: 'edit-mix',
    type: 'number',
    description: 'edit stage: probability an example is edit-corrupted (else masked)',
    default: 0.5,
    min: 0,
    max: 1,
  },
  {
    path: 'curriculum.mask_eps',
    flag: 'mask-eps',
    type: 'number',
    description: 'mask rate floor: p_mask = (1-eps) t + eps',
    default: 1e-3,
    min: 0,
    minExclusive: true,
    max: 1,
  },
  {
    path: 'curriculum.edit_alpha_max',
    flag: 'edit-alpha-max',
    type: 'number',
    description: 'edit stage: edits k = floor(len * alpha), alpha ~ U(0, alpha_max)',
    default: 0.1,
    min: 0,
    max: 1,
  },
  {
    path: 'curriculum.edit_targets',
    flag: 'edit-targets',
    type: 'string',
    description: 'edit targets: positional (canvas) or aligned (Levenshtein, <|del|> for insertions)',
    default: 'positional',
    choices: ['positional', 'aligned'],
  },
  {
    path: 'curriculum.structure',
    flag: 'structure',
    type: 'boolean',
    description: 'structure-aware masking of whole tree-sitter spans',
    default: false,
  },
  {
    path: 'curriculum.clean_prefix',
    flag: 'clean-prefix',
    type: 'boolean',
    description:
      'block attention, mask stage: blocks before a random block stay clean (no loss), as earlier blocks are when a block is decoded',
    default: false,
  },
  {
    path: 'curriculum.two_stream',
    flag: 'two-stream',
    type: 'boolean',
    description:
      'block attention: rows of the noisy then the clean sequence, each noisy block attending to the clean blocks before it, so every block trains on the clean prefix it is decoded with (2x tokens per forward)',
    default: false,
  },
  {
    path: 'curriculum.align_blocks',
    flag: 'align-blocks',
    type: 'boolean',
    description:
      'block attention: each packed document starts at a block boundary and its last block is filled with <|eos|> targets, as the sampler meets a document (documents that no longer fit the window are left out)',
    default: false,
  },
  {
    path: 'curriculum.suffix_masks',
    flag: 'suffix-masks',
    type: 'number',
    description:
      'block attention, mask stage: the probability that a block masks its last m tokens (m drawn as for scattered masks) instead of scattered ones: the clean-prefix, masked-rest states left-to-right decoding asks about (0: off)',
    default: 0,
    min: 0,
    max: 1,
  },
  {
    path: 'curriculum.mask_warmup_steps',
    flag: 'mask-warmup',
    type: 'int',
    description: 'mask-ratio warm-up: the cap on t grows from 0.01 to 1 over N steps (0: off)',
    default: 0,
    min: 0,
  },
  {
    path: 'batch.batch_size',
    flag: 'batch-size',
    type: 'int',
    description: 'sequences per optimizer step',
    default: 8,
    min: 1,
  },
  {
    path: 'batch.micro_batches',
    flag: 'micro-batches',
    type: 'int',
    description: 'micro-batches per step (gradient accumulation); must divide batch-size',
    default: 1,
    min: 1,
  },
  {
    path: 'schedule.lr',
    flag: 'lr',
    type: 'number',
    description: 'peak learning rate',
    default: 6e-3,
    min: 0,
    minExclusive: true,
  },
  {
    path: 'schedule.min_lr',
    flag: 'min-lr',
    type: 'number',
    description: 'learning rate at the end of the cosine decay',
    default: 6e-4,
    min: 0,
  },
  {
    path: 'schedule.warmup_steps',
    flag: 'warmup',
    type: 'int',
    description: 'linear warm-up steps',
    default: 20,
    min: 0,
  },
  {
    path: 'schedule.weight_decay',
    flag: 'weight-decay',
    type: 'number',
    description: 'AdamW decoupled weight decay',
    default: 0.1,
    min: 0,
  },
  {
    path: 'schedule.clip',
    flag: 'clip',
    type: 'number',
    description: 'clip the global gradient norm to this (0: off)',
    default: 1,
    min: 0,
  },
  {
    path: 'schedule.beta1',
    flag: 'beta1',
    type: 'number',
    description: 'AdamW beta1',
    default: 0.9,
    min: 0,
    max: 1,
  },
  {
    path: 'schedule.beta2',
    flag: 'beta2',
    type: 'number',
    description: 'AdamW beta2',
    default: 0.95,
    min: 0,
    max: 1,
  },
  {
    path: 'steps',
    flag: 'steps',
    type: 'int',
    description: 'optimizer steps (0: derive from --tokens)',
    default: 300,
    min: 0,
  },
  {
    path: 'tokens',
    flag: 'tokens',
    type: 'int',
    description: 'tokens to see, used when steps is 0',
    default: 0,
    min: 0,
  },
  {
    path: 'checkpoint.every',
    flag: 'checkpoint-every',
    type: 'int',
    description: 'write a checkpoint every N steps (0: only at the end)',
    default: 100,
    min: 0,
  },
  {
    path: 'checkpoint.keep',
    flag: 'keep',
    type: 'int',
    description: 'checkpoints to keep',
    default: 2,
    min: 1,
  },
  {
    path: 'validation.every',
    flag: 'val-every',
    type: 'int',
    description: 'validate every N steps (0: only at the end)',
    default: 50,
    min: 0,
  },
  {
    path: 'validation.batches',
    flag: 'val-batches',
    type: 'int',
    description: 'validation batches (of batch-size / micro-batches sequences) per evaluation',
    default: 4,
    min: 1,
  },
  {
    path: 'seed',
    flag: 'seed',
    type: 'int',
    description: 'seed of data order, corruption and init',
    default: 1234,
    min: 0,
  },
  {
    path: 'threads',
    flag: 'threads',
    type: 'int',
    description: 'OpenMP threads of the native trainer',
    default: 2,
    min: 1,
  },
  {
    path: 'workers',
    flag: 'workers',
    type: 'int',
    description: 'worker threads that corrupt examples (0: in the main thread)',
    default: 1,
    min: 0,
  },
  {
    path: 'out',
    flag: 'out',
    type: 'string',
    description: 'run directory',
    default: 'runs/demo',
  },
  {
    path: 'init_from',
    flag: 'init-from',
    type: 'string',
    description: "start from this checkpoint's weights instead of a random init (same shape; '' for random)",
    default: '',
    optional: true,
  },
];

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const key of keys.slice(0, -1)) {
    if (cur[key] === undefined || cur[key] === null || typeof cur[key] !== 'object') cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/** The config every file and flag starts from. */
export function defaultConfig(): TrainConfig {
  const cfg: Record<string, unknown> = {};
  for (const f of FIELDS) setPath(cfg, f.path, f.default);
  return cfg as unknown as TrainConfig;
}

/**
 * CLI options of `sdt train` generated from FIELDS. No `default` is attached so that an unset flag stays
 * undefined and does not override the config file; the default is shown in the description instead.
 */
export function configOptions(): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = {};
  for (const f of FIELDS) {
    const isModel = MODEL_FIELDS.some((k) => f.path === `model.${k}`);
    const shown = isModel ? `${JSON.stringify(f.default)} in preset demo` : JSON.stringify(f.default);
    out[f.flag] = {
      type: f.type === 'int' ? 'number' : f.type,
      arg:
        f.flag === 'dataset' || f.flag === 'out'
          ? 'DIR'
          : f.type === 'int'
            ? 'N'
            : f.type === 'number'
              ? 'X'
              : 'NAME',
      description: `${f.description} [default: ${shown}; config: ${f.path}]`,
      ...(f.choices ? { choices: f.choices } : {}),
      // The field's range, so help shows it and the flag is refused before the config is assembled.
      ...(f.flag === 'out' ? { output: 'dir' as const } : {}),
      ...(f.type === 'int' ? { integer: true } : {}),
      ...(f.min !== undefined ? { min: f.min, ...(f.minExclusive ? { minExclusive: true } : {}) } : {}),
      ...(f.max !== undefined ? { max: f.max } : {}),
    };
  }
  return out;
}

/** Flags the user actually gave (the options above have no defaults, so unset ones are undefined). */
export function explicitFlags(opts: OptionValues): Set<string> {
  return new Set(FIELDS.map((f) => f.flag).filter((flag) => opts[flag] !== undefined));
}

/** Where a config came from, for messages: a file name or "flags". */
function checkField(f: FieldSpec, value: unknown, source: string): string | undefined {
  // Values from flags are named by their flag; values from a file by their field.
  const name = source === 'flags' ? `--${f.flag} (${f.path})` : `${source}: ${f.path}`;
  switch (f.type) {
    case 'boolean':
      if (typeof value !== 'boolean') return `${name} must be true or false (got ${JSON.stringify(value)})`;
      return undefined;
    case 'string':
      if (typeof value !== 'string' || (value === '' && !f.optional))
        return `${name} must be a non-empty string (got ${JSON.stringify(value)})`;
      if (f.choices && !f.choices.includes(value))
        return `${name} must be one of ${f.choices.join(', ')} (got ${JSON.stringify(value)})`;
      return undefined;
    default: {
      if (typeof value !== 'number' || !Number.isFinite(value))
        return `${name} must be a number (got ${JSON.stringify(value)})`;
      if (f.type === 'int' && !Number.isInteger(value)) return `${name} must be an integer (got ${value})`;
      if (f.min !== undefined && (f.minExclusive ? value <= f.min : value < f.min))
        return `${name} must be ${f.minExclusive ? '>' : '>='} ${f.min} (got ${value})`;
      if (f.max !== undefined && value > f.max) return `${name} must be <= ${f.max} (got ${value})`;
      return undefined;
    }
  }
}

function unknownKeys(obj: unknown, prefix: string, known: Set<string>, out: string[]): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (known.has(path)) continue;
    const isGroup = [...known].some((p) => p.startsWith(`${path}.`));
    if (isGroup) unknownKeys(v, path, known, out);
    else out.push(path);
  }
}

/**
 * Merge a partial config (from a file) over the defaults: model fields come from the preset unless given.
 * Rejects unknown keys (typos would otherwise be silently ignored), naming them.
 */
export function mergeConfig(partial: Record<string, unknown>, source: string): TrainConfig {
  const known = new Set(FIELDS.map((f) => f.path));
  const unknown: string[] = [];
  unknownKeys(partial, '', known, unknown);
  if (unknown.length > 0) {
    throw new UserError(
      `${source}: unknown field ${unknown.map((u) => JSON.stringify(u)).join(', ')}; the fields are listed by \`sdt train --help\`.`,
    );
  }
  const preset = (getPath(partial, 'model.preset') as string | undefined) ?? 'demo';
  if (typeof preset !== 'string' || !(preset in PRESETS)) {
    throw new UserError(
      `${source}: model.preset must be one of ${Object.keys(PRESETS).join(', ')} (got ${JSON.stringify(preset)})`,
    );
  }
  const cfg = defaultConfig() as unknown as Record<string, unknown>;
  for (const k of MODEL_FIELDS) setPath(cfg, `model.${k}`, PRESETS[preset][k]);
  for (const f of FIELDS) {
    const v = getPath(partial, f.path);
    if (v !== undefined) setPath(cfg, f.path, v);
  }
  return cfg as unknown as TrainConfig;
}

/** Apply CLI flag values over a config; a preset flag resets the model shape before explicit model flags. */
export function applyFlags(base: TrainConfig, opts: OptionValues, explicit: Set<string>): TrainConfig {
  const cfg = structuredClone(base) as unknown as Record<string, unknown>;
  if (explicit.has('model')) {
    const preset = opts.model as string;
    setPath(cfg, 'model.preset', preset);
    for (const k of MODEL_FIELDS) setPath(cfg, `model.${k}`, PRESETS[preset][k]);
  }
  for (const f of FIELDS) {
    if (f.flag === 'model' || !explicit.has(f.flag)) continue;
    setPath(cfg, f.path, opts[f.flag]);
  }
  // Refused rather than resolved: an AR run would train causally and the checkpoint would not say block.
  if (explicit.has('attention') && getPath(cfg, 'objective') === 'ar')
    throw new UserError(
      `--attention ${opts.attention} and --objective ar cannot be used together: the AR objective is always causal; drop --attention, or train a diffusion model.`,
    );
  // --heads alone means plain multi-head attention, not the preset's grouping.
  if (explicit.has('heads') && !explicit.has('kv-heads'))
    setPath(cfg, 'model.num_key_value_heads', opts.heads);
  return cfg as unknown as TrainConfig;
}

/** Every problem of a config, each naming the field; empty when it is usable. */
export function configProblems(cfg: TrainConfig, source: string): string[] {
  const problems: string[] = [];
  const obj = cfg as unknown as Record<string, unknown>;
  for (const f of FIELDS) {
    const p = checkField(f, getPath(obj, f.path), source);
    if (p) problems.push(p);
  }
  if (problems.length > 0) return problems;
  const m = cfg.model;
  if (m.hidden_size % m.num_attention_heads !== 0)
    problems.push(
      `${source}: model.hidden_size must be a positive multiple of num_attention_heads (got ${m.hidden_size} with ${m.num_attention_heads} heads)`,
    );
  else if ((m.hidden_size / m.num_attention_heads) % 2 !== 0)
    problems.push(
      `${source}: model.hidden_size / num_attention_heads must be even for rotary embeddings (got head size ${m.hidden_size / m.num_attention_heads})`,
    );
  if (m.num_attention_heads % m.num_key_value_heads !== 0)
    problems.push(
      `${source}: model.num_key_value_heads must divide num_attention_heads (got ${m.num_key_value_heads} for ${m.num_attention_heads} heads)`,
    );
  if (cfg.batch.batch_size % cfg.batch.micro_batches !== 0)
    problems.push(
      `${source}: batch.batch_size must be a multiple of batch.micro_batches (got ${cfg.batch.batch_size} and ${cfg.batch.micro_batches})`,
    );
  if (cfg.schedule.min_lr > cfg.schedule.lr)
    problems.push(
      `${source}: schedule.min_lr must be <= schedule.lr (got ${cfg.schedule.min_lr} > ${cfg.schedule.lr})`,
    );
  if (cfg.curriculum.two_stream && (cfg.objective !== 'diffusion' || m.attention_mode !== 'block'))
    problems.push(
      `${source}: curriculum.two_stream trains block diffusion models; set --attention block (got objective ${cfg.objective}, attention ${m.attention_mode})`,
    );
  if (cfg.curriculum.align_blocks && (cfg.objective !== 'diffusion' || m.attention_mode !== 'block'))
    problems.push(
      `${source}: curriculum.align_blocks aligns documents to the blocks of block diffusion; set --attention block (got objective ${cfg.objective}, attention ${m.attention_mode})`,
    );
  if (cfg.curriculum.suffix_masks > 0 && (cfg.objective !== 'diffusion' || m.attention_mode !== 'block'))
    problems.push(
      `${source}: curriculum.suffix_masks masks block suffixes for block diffusion; set --attention block or --suffix-masks 0 (got objective ${cfg.objective}, attention ${m.attention_mode})`,
    );
  if (cfg.curriculum.suffix_masks > 0 && cfg.curriculum.structure)
    problems.push(
      `${source}: curriculum.suffix_masks and curriculum.structure exclude each other (a suffix is not a tree-sitter span); drop one`,
    );
  if (cfg.curriculum.two_stream && cfg.curriculum.clean_prefix)
    problems.push(
      `${source}: curriculum.clean_prefix and curriculum.two_stream exclude each other: under two_stream every noisy block already sees a clean prefix; drop --clean-prefix`,
    );
  if (cfg.steps === 0 && cfg.tokens === 0)
    problems.push(`${source}: steps and tokens are both 0; set one of them (e.g. --steps 300)`);
  return problems;
}

export function validateConfig(cfg: TrainConfig, source: string): TrainConfig {
  const problems = configProblems(cfg, source);
  if (problems.length > 0) throw new UserError(problems.join('\n'));
  return cfg;
}

/** Read and validate a config file (JSON). */
export async function loadConfigFile(path: string): Promise<TrainConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UserError(
      `${path}: not valid JSON (${(err as Error).message}); fix the file or pass flags instead.`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new UserError(`${path}: the config must be a JSON object`);
  return validateConfig(mergeConfig(parsed as Record<string, unknown>, path), path);
}

/** Sequences per micro-batch (one stream frame). */
export const microBatchSize = (cfg: TrainConfig): number => cfg.batch.batch_size / cfg.batch.micro_batches;

/** Optimizer steps of the run. */
export function totalSteps(cfg: TrainConfig): number {
  if (cfg.steps > 0) return cfg.steps;
  return Math.ceil(cfg.tokens / (cfg.batch.batch_size * cfg.data.seq_len));
}

/** Positions of one stream row: seq_len, or twice it when the row holds the noisy then the clean sequence. */
export const rowLength = (cfg: TrainConfig): number => cfg.data.seq_len * (cfg.curriculum.two_stream ? 2 : 1);

/** Tokens the run will see (positions fed to the model, padding included). */
export const totalTokens = (cfg: TrainConfig): number =>
  totalSteps(cfg) * cfg.batch.batch_size * cfg.data.seq_len;
