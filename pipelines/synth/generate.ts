import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../common/errors.ts';
import { Rng } from '../corrupt/rng.ts';
import { stableHash32 } from '../steps/hash.ts';
import { allCompositions, FAMILIES, type InputKind, type TaskDraft } from './families.ts';

/**
 * The synthetic code world: Python tasks composed of typed primitives, each with a docstring that states
 * the behaviour in words, a reference body and tests made by running the reference on generated inputs.
 * Task i depends only on (seed, i); a composition's split depends only on (split seed, composition), so
 * held-out compositions never occur in train, at any size.
 */

export type SynthSplit = 'train' | 'validation' | 'test';

export interface SplitSettings {
  /** Share of compositions held out for validation and for test. */
  validation: number;
  test: number;
  seed: number;
}

export interface SynthTask extends TaskDraft {
  id: string;
  split: SynthSplit;
  /** `def check(candidate):` with one assert per case (HumanEval's shape). */
  test: string;
  cases: { args: string; expected: string }[];
}

export interface DroppedTask {
  id: string;
  composition: string;
  reason: 'reference-error' | 'too-few-distinct-outputs' | 'duplicate';
  detail: string;
}

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'reference_runner.py');

function hashedSplit(key: string, s: SplitSettings): SynthSplit {
  const u = stableHash32(`synth-split:${s.seed}:${key}`) / 2 ** 32;
  if (u < s.test) return 'test';
  if (u < s.test + s.validation) return 'validation';
  return 'train';
}

/**
 * The split of every composition: a stable hash of (split seed, composition), except that a held-out
 * composition with a primitive no train composition of its family has goes back to train, so every
 * held-out task is a new combination of primitives seen in training, never an unseen primitive.
 */
export function compositionSplits(s: SplitSettings): Map<string, SynthSplit> {
  const comps = allCompositions();
  const splits = new Map(comps.map((c) => [c.key, hashedSplit(c.key, s)]));
  const trainSlots = new Set<string>();
  for (const c of comps) if (splits.get(c.key) === 'train') for (const p of slotsOf(c.key)) trainSlots.add(p);
  for (const c of comps) {
    if (splits.get(c.key) !== 'train' && slotsOf(c.key).some((p) => !trainSlots.has(p))) {
      splits.set(c.key, 'train');
      for (const p of slotsOf(c.key)) trainSlots.add(p);
    }
  }
  return splits;
}

interface Catalog {
  weights: number[];
  byFamily: string[][][];
}

let catalog: Catalog | undefined;
function getCatalog(): Catalog {
  catalog ??= {
    weights: FAMILIES.map((f) => f.weight),
    byFamily: FAMILIES.map((f) => f.compositions()),
  };
  return catalog;
}

/** Task i of a seed, before its tests exist. */
export function draftTask(seed: number, index: number): TaskDraft {
  const rng = new Rng(seed, index);
  const cat = getCatalog();
  const f = rng.weighted(cat.weights);
  const comps = cat.byFamily[f];
  return FAMILIES[f].draft(comps[rng.int(comps.length)], rng);
}

const WORDS = [
  'apple',
  'Banana',
  'cat',
  'dog',
  'Eel',
  'sun',
  'tree',
  'moon',
  'star',
  'arts',
  'lemon',
  'Ice',
  'ocean',
  'pear',
  'rose',
  'Tom',
  'bird',
  'cold',
  'hot',
  'milk',
  'stone',
  'apes',
  'Rain',
  'salt',
];
const CHARS = 'abcdeiouxyzABEIXZ0123456789  ';

/** Test inputs of a kind, each an argument list. */
export function drawInputs(kind: InputKind, rng: Rng, count: number): unknown[][] {
  const out: unknown[][] = [];
  for (let i = 0; i < count; i++) {
    switch (kind) {
      case 'ints': {
        const len = i === 0 ? rng.range(3, 8) : rng.range(0, 8);
        out.push([Array.from({ length: len }, () => rng.range(-9, 10))]);
        break;
      }
      case 'int':
        out.push([rng.range(-12, 13)]);
        break;
      case 'chars': {
        const len = i === 0 ? rng.range(4, 12) : rng.range(0, 12);
        out.push([Array.from({ length: len }, () => CHARS[rng.int(CHARS.length)]).join('')]);
        break;
      }
      case 'sentence': {
        const len = i === 0 ? rng.range(3, 7) : rng.range(1, 7);
        out.push([Array.from({ length: len }, () => WORDS[rng.int(WORDS.length)]).join(' ')]);
        break;
      }
    }
  }
  return out;
}

export interface ReferenceJob {
  id: string;
  code: string;
  entry: string;
  inputs: unknown[][];
}

export type ReferenceResult =
  | { id: string; cases: { args: string; expected: string }[] }
  | { id: string; error: string };

/** Run references in one Python process (each under its own alarm); results come back in input order. */
export async function runReferences(
  jobs: ReferenceJob[],
  opts: { python?: string; secondsPerTask?: number } = {},
): Promise<ReferenceResult[]> {
  if (jobs.length === 0) return [];
  const python = opts.python ?? 'python3';
  const seconds = opts.secondsPerTask ?? 2;
  const child = spawn(python, ['-I', '-B', RUNNER, String(seconds)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  const errs: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => chunks.push(b));
  child.stderr.on('data', (b: Buffer) => errs.push(b));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        new UserError(`cannot run ${python} for the reference solutions (${err.message}); pass --python.`),
      ),
    );
    child.on('close', (code) => resolve(code ?? 1));
  });
  child.stdin.on('error', () => {});
  for (const j of jobs) child.stdin.write(`${JSON.stringify(j)}\n`);
  child.stdin.end();
  const code = await exited;
  if (code !== 0) {
    const tail = Buffer.concat(errs).toString('utf8').trim().split('\n').slice(-5).join('\n');
    throw new UserError(`the reference runner (${python} ${RUNNER}) exited with ${code}:\n${tail}`);
  }
  const lines = Buffer.concat(chunks).toString('utf8').trim().split('\n');
  const byId = new Map<string, ReferenceResult>();
  for (const line of lines) {
    const r = JSON.parse(line) as ReferenceResult;
    byId.set(r.id, r);
  }
  return jobs.map((j) => byId.get(j.id) ?? { id: j.id, error: 'no result from the runner' });
}

/** HumanEval-shaped test code for a task's cases. */
export function checkFunction(cases: { args: string; expected: string }[]): string {
  return `def check(candidate):\n${cases.map((c) => `    assert candidate(${c.args}) == ${c.expected}\n`).join('')}`;
}

const TEST_CASES = 6;
/** Distinct outputs a task's cases must show: 3, or both answers for a yes/no task. */
const MIN_DISTINCT = 3;
const BOOLEAN_OUTPUTS = new Set(['True', 'False']);

export interface GenerateOptions {
  seed: number;
  splits: SplitSettings;
  /** How many tasks each split should end with. */
  counts: Record<SynthSplit, number>;
  python?: string;
  /** Called as tasks are drafted and verified, for progress. */
  onProgress?: (verified: number) => void;
  /** Replaces drafts before they run (tests inject broken references through it). */
  mutateDraft?: (draft: TaskDraft, index: number) => TaskDraft;
}

export interface GenerateResult {
  tasks: Record<SynthSplit, SynthTask[]>;
  dropped: DroppedTask[];
  /** Task indices drawn in all (kept, dropped and surplus). */
  drawn: number;
}

/**
 * Draw tasks in index order, route each to its composition's split, run the references in batches and
 * keep tasks until every split has its count. Prompts already kept are duplicates and are dropped.
 */
export async function generateTasks(opts: GenerateOptions): Promise<GenerateResult> {
  const tasks: Record<SynthSplit, SynthTask[]> = { train: [], validation: [], test: [] };
  const dropped: DroppedTask[] = [];
  const seen = new Set<string>();
  const need = (s: SynthSplit) => tasks[s].length < opts.counts[s];
  const splitOf = compositionSplits(opts.splits);
  for (const s of ['validation', 'test'] as const) {
    if (opts.counts[s] > 0 && ![...splitOf.values()].includes(s))
      throw new UserError(`no composition falls in the ${s} split; raise --${s}-fraction.`);
  }
  let index = 0;
  const batch = 2048;
  let verified = 0;
  while ((['train', 'validation', 'test'] as const).some(need)) {
    const pending: { draft: TaskDraft; id: string; split: SynthSplit; inputs: unknown[][] }[] = [];
    while (pending.length < batch && index < 1e9) {
      const i = index++;
      let draft = draftTask(opts.seed, i);
      if (opts.mutateDraft) draft = opts.mutateDraft(draft, i);
      const split = splitOf.get(draft.composition);
      if (!split) throw new Error(`composition ${draft.composition} is not in the catalog`);
      if (!need(split)) continue;
      const rng = new Rng(opts.seed, i, 1);
      pending.push({ draft, id: `synth/${i}`, split, inputs: drawInputs(draft.input, rng, TEST_CASES * 2) });
    }
    const results = await runReferences(
      pending.map((p) => ({
        id: p.id,
        code: p.draft.prompt + p.draft.body,
        entry: p.draft.entry,
        inputs: p.inputs,
      })),
      { python: opts.python },
    );
    for (const [k, p] of pending.entries()) {
      const r = results[k];
      const base = { id: p.id, composition: p.draft.composition };
      if ('error' in r) {
        dropped.push({ ...base, reason: 'reference-error', detail: r.error });
        continue;
      }
      const cases = pickCases(r.cases);
      if (!cases) {
        dropped.push({
          ...base,
          reason: 'too-few-distinct-outputs',
          detail: `too few distinct outputs (${new Set(r.cases.map((c) => c.expected)).size}) on ${r.cases.length} inputs`,
        });
        continue;
      }
      if (seen.has(p.draft.prompt)) {
        dropped.push({ ...base, reason: 'duplicate', detail: 'same prompt as an earlier task' });
        continue;
      }
      if (!need(p.split)) continue;
      seen.add(p.draft.prompt);
      tasks[p.split].push({ ...p.draft, id: p.id, split: p.split, cases, test: checkFunction(cases) });
      verified++;
    }
    opts.onProgress?.(verified);
  }
  return { tasks, dropped, drawn: index };
}

/** TEST_CASES cases with at least MIN_DISTINCT distinct outputs, preferring distinct ones first. */
function pickCases(
  all: { args: string; expected: string }[],
): { args: string; expected: string }[] | undefined {
  const distinct = new Set(all.map((c) => c.expected));
  const yesNo = [...distinct].every((e) => BOOLEAN_OUTPUTS.has(e));
  if (distinct.size < (yesNo ? BOOLEAN_OUTPUTS.size : MIN_DISTINCT)) return undefined;
  // The first case of each distinct output, then the others, in input order within each group.
  const seen = new Set<string>();
  const firsts: number[] = [];
  const rest: number[] = [];
  all.forEach((c, i) => {
    (seen.has(c.expected) ? rest : firsts).push(i);
    seen.add(c.expected);
  });
  const order = [...firsts, ...rest];
  return order
    .slice(0, TEST_CASES)
    .sort((a, b) => a - b)
    .map((i) => all[i]);
}

export interface LeakageReport {
  /** Held-out compositions that also occur in train (must be 0). */
  heldOutCompositionsInTrain: number;
  /** Held-out reference bodies that also occur in train (must be 0). */
  heldOutBodiesInTrain: number;
  /** Primitives (composition slots) of held-out tasks never seen in any train composition. */
  unseenPrimitives: string[];
}

/** Proves the split: no held-out composition or reference body occurs in train. */
export function leakageReport(tasks: Record<SynthSplit, SynthTask[]>): LeakageReport {
  const trainComps = new Set(tasks.train.map((t) => t.composition));
  const trainBodies = new Set(tasks.train.map((t) => t.body));
  const trainSlots = new Set(tasks.train.flatMap((t) => slotsOf(t.composition)));
  const heldOut = [...tasks.validation, ...tasks.test];
  const unseen = new Set<string>();
  for (const t of heldOut) for (const s of slotsOf(t.composition)) if (!trainSlots.has(s)) unseen.add(s);
  return {
    heldOutCompositionsInTrain: heldOut.filter((t) => trainComps.has(t.composition)).length,
    heldOutBodiesInTrain: heldOut.filter((t) => trainBodies.has(t.body)).length,
    unseenPrimitives: [...unseen].sort(),
  };
}

/** "family:a:b" -> ["family:0:a", "family:1:b"]: a primitive is a slot value at its place in a family. */
function slotsOf(composition: string): string[] {
  const [family, ...slots] = composition.split(':');
  return slots.map((s, i) => `${family}:${i}:${s}`);
}
