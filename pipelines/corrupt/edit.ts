/**
 * The edit process (docs/corruptions.md): k = floor(len * alpha_t), alpha_t ~ U(0, alphaMax);
 * token-level insertions, deletions and substitutions plus structure-aware edits from the spans.
 *
 * Every operation touches positions no earlier operation touched and is charged its token-level cost
 * (a deleted statement of m tokens costs m). The total charge never exceeds k, so the Levenshtein
 * distance between x0 and the edited sequence is at most k.
 */
import type { Span } from '../../schemas/dataset.ts';
import type { Rng } from './rng.ts';
import type { CorruptSpecials } from './types.ts';
import type { EditVocabulary } from './vocab.ts';

export const EDIT_OPS = [
  'insertRandom',
  'insertCopy',
  'delete',
  'substitute',
  'deleteStatement',
  'duplicateLine',
  'swapIdentifier',
  'replaceOperator',
] as const;
export type EditOp = (typeof EDIT_OPS)[number];

export const DEFAULT_ALPHA_MAX = 0.1;

/** Token-level ops only; insertions split between random vocabulary tokens and tokens of the same file. */
export const TOKEN_OP_WEIGHTS: Readonly<Partial<Record<EditOp, number>>> = {
  insertRandom: 0.5,
  insertCopy: 0.5,
  delete: 1,
  substitute: 1,
};

/** With --structure: the token-level mix plus the four structure-aware edits. */
export const STRUCTURE_OP_WEIGHTS: Readonly<Partial<Record<EditOp, number>>> = {
  ...TOKEN_OP_WEIGHTS,
  deleteStatement: 0.5,
  duplicateLine: 0.5,
  swapIdentifier: 0.5,
  replaceOperator: 0.5,
};

export interface EditOptions {
  specials: CorruptSpecials;
  vocab: EditVocabulary;
  /** alpha_t ~ U(0, alphaMax). Default 0.1. */
  alphaMax?: number;
  /** Fixed alpha_t instead of a draw. */
  alpha?: number;
  /** Use the structure-aware mix (ignored when opWeights is given). */
  structure?: boolean;
  /** Relative frequency of each operation; missing ops are not used. */
  opWeights?: Partial<Record<EditOp, number>>;
}

export interface EditResult {
  x0: Int32Array;
  /** The edited sequence. */
  edited: Int32Array;
  /** Segment id per edited position (inserted tokens take their neighbour's segment). */
  editedSegment?: Int32Array;
  alpha: number;
  /** The budget k = floor(len * alpha). */
  budget: number;
  /** Sum of the charged costs (<= budget); an upper bound on the Levenshtein distance. */
  charged: number;
  applied: Record<EditOp, number>;
}

// state 0 = kept (the Uint8Array default)
const DELETED = 1;
const SUBSTITUTED = 2;

class EditState {
  readonly n: number;
  readonly state: Uint8Array;
  readonly touched: Uint8Array;
  readonly sub: Int32Array;
  readonly inserts: (number[] | undefined)[];
  readonly editable: number[] = [];
  readonly slots: number[] = [];
  readonly slotOk: Uint8Array;

  constructor(
    readonly x0: Int32Array,
    readonly sp: CorruptSpecials,
    readonly segment: Int32Array | undefined,
  ) {
    const n = x0.length;
    this.n = n;
    this.state = new Uint8Array(n);
    this.touched = new Uint8Array(n);
    this.sub = new Int32Array(n);
    this.inserts = new Array(n + 1);
    const prot = (tok: number) => tok === sp.pad || tok === sp.bos || tok === sp.eos;
    for (let i = 0; i < n; i++) if (!prot(x0[i])) this.editable.push(i);
    this.slotOk = new Uint8Array(n + 1);
    // No insertion before a BOS or after an EOS: tokens must stay inside their document.
    for (let s = 0; s <= n; s++) {
      if (s < n && x0[s] === sp.bos) continue;
      if (s > 0 && x0[s - 1] === sp.eos) continue;
      if ((s < n && x0[s] === sp.pad) || (s > 0 && x0[s - 1] === sp.pad)) continue;
      if (n === 0) continue;
      this.slotOk[s] = 1;
      this.slots.push(s);
    }
  }

  isFree(i: number): boolean {
    return (
      i >= 0 &&
      i < this.n &&
      !this.touched[i] &&
      this.x0[i] !== this.sp.pad &&
      this.x0[i] !== this.sp.bos &&
      this.x0[i] !== this.sp.eos
    );
  }

  rangeFree(start: number, end: number): boolean {
    if (end <= start) return false;
    for (let i = start; i < end; i++) if (!this.isFree(i)) return false;
    return true;
  }

  /** A random untouched editable position, or -1. */
  freePosition(rng: Rng): number {
    const e = this.editable;
    if (e.length === 0) return -1;
    for (let tries = 0; tries < 16; tries++) {
      const i = e[rng.int(e.length)];
      if (!this.touched[i]) return i;
    }
    const free = e.filter((i) => !this.touched[i]);
    return free.length ? free[rng.int(free.length)] : -1;
  }

  insert(slot: number, tokens: ArrayLike<number>): void {
    let list = this.inserts[slot];
    if (!list) {
      list = [];
      this.inserts[slot] = list;
    }
    for (let i = 0; i < tokens.length; i++) list.push(tokens[i]);
  }

  remove(i: number): void {
    this.state[i] = DELETED;
    this.touched[i] = 1;
  }

  substitute(i: number, tok: number): void {
    this.state[i] = SUBSTITUTED;
    this.sub[i] = tok;
    this.touched[i] = 1;
  }

  build(): { edited: Int32Array; editedSegment?: Int32Array } {
    const out: number[] = [];
    const seg: number[] = [];
    const s = this.segment;
    for (let i = 0; i <= this.n; i++) {
      const ins = this.inserts[i];
      if (ins) {
        const sid = s ? s[Math.min(i, this.n - 1)] : 0;
        for (const t of ins) {
          out.push(t);
          seg.push(sid);
        }
      }
      if (i === this.n || this.state[i] === DELETED) continue;
      out.push(this.state[i] === SUBSTITUTED ? this.sub[i] : this.x0[i]);
      seg.push(s ? s[i] : 0);
    }
    const edited = Int32Array.from(out);
    return s ? { edited, editedSegment: Int32Array.from(seg) } : { edited };
  }
}

function randomToken(rng: Rng, v: EditVocabulary, avoid: number): number {
  const size = v.randomHi - v.randomLo;
  if (size <= 0) return -1;
  if (size === 1) return v.randomLo === avoid ? -1 : v.randomLo;
  for (;;) {
    const t = v.randomLo + rng.int(size);
    if (t !== avoid) return t;
  }
}

/** Lines as [start, end) position ranges: each ends just after a newline-bearing token. */
function findLines(x0: Int32Array, v: EditVocabulary): [number, number][] {
  const lines: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < x0.length; i++) {
    if (v.newlineIds.has(x0[i])) {
      lines.push([start, i + 1]);
      start = i + 1;
    }
  }
  return lines;
}

const sameTokens = (x: Int32Array, a: Span, b: Span): boolean => {
  if (a.end - a.start !== b.end - b.start) return false;
  for (let i = 0; i < a.end - a.start; i++) if (x[a.start + i] !== x[b.start + i]) return false;
  return true;
};

type Attempt = (st: EditState, rng: Rng, remaining: number) => number;

function makeAttempts(spans: readonly Span[], v: EditVocabulary, x0: Int32Array): Record<EditOp, Attempt> {
  const statements = spans.filter((s) => s.kind === 'statement');
  const identifiers = spans.filter((s) => s.kind === 'identifier');
  let lines: [number, number][] | undefined;
  // A keyword-like token inside an identifier ("in" of "index") is a word piece, not an operator.
  const inIdentifier = new Uint8Array(x0.length);
  for (const s of identifiers) inIdentifier.fill(1, s.start, s.end);
  const operatorAt: number[] = [];
  for (let i = 0; i < x0.length; i++) {
    const g = v.operatorGroup.get(x0[i]);
    if (g !== undefined && !inIdentifier[i] && v.operatorGroups[g].length >= 2) operatorAt.push(i);
  }
  const TRIES = 12;
  return {
    insertRandom(st, rng) {
      if (st.slots.length === 0) return 0;
      const tok = randomToken(rng, v, -1);
      if (tok < 0) return 0;
      st.insert(st.slots[rng.int(st.slots.length)], [tok]);
      return 1;
    },
    insertCopy(st, rng) {
      if (st.slots.length === 0 || st.editable.length === 0) return 0;
      const slot = st.slots[rng.int(st.slots.length)];
      let from = st.editable[rng.int(st.editable.length)];
      // "Same file" in a packed window means the same segment as the insertion point.
      if (st.segment) {
        const seg = st.segment[Math.min(slot, st.n - 1)];
        for (let t = 0; t < TRIES && st.segment[from] !== seg; t++)
          from = st.editable[rng.int(st.editable.length)];
        if (st.segment[from] !== seg) return 0;
      }
      st.insert(slot, [x0[from]]);
      return 1;
    },
    delete(st, rng) {
      const i = st.freePosition(rng);
      if (i < 0) return 0;
      st.remove(i);
      return 1;
    },
    substitute(st, rng) {
      const i = st.freePosition(rng);
      if (i < 0) return 0;
      const tok = randomToken(rng, v, x0[i]);
      if (tok < 0) return 0;
      st.substitute(i, tok);
      return 1;
    },
    deleteStatement(st, rng, remaining) {
      for (let t = 0; t < TRIES && statements.length; t++) {
        const s = statements[rng.int(statements.length)];
        if (s.end - s.start > remaining || !st.rangeFree(s.start, s.end)) continue;
        for (let i = s.start; i < s.end; i++) st.remove(i);
        return s.end - s.start;
      }
      return 0;
    },
    duplicateLine(st, rng, remaining) {
      lines ??= findLines(x0, v);
      // Without line knowledge (no tokenizer), statements stand in for lines.
      const pool: [number, number][] = lines.length ? lines : statements.map((s) => [s.start, s.end]);
      for (let t = 0; t < TRIES && pool.length; t++) {
        const [a, b] = pool[rng.int(pool.length)];
        if (b - a > remaining || !st.slotOk[a] || !st.rangeFree(a, b)) continue;
        // Copies the clean line, so the duplicate is exactly what an accidental paste would produce.
        st.insert(a, x0.subarray(a, b));
        return b - a;
      }
      return 0;
    },
    swapIdentifier(st, rng, remaining) {
      if (identifiers.length < 2) return 0;
      for (let t = 0; t < TRIES; t++) {
        const a = identifiers[rng.int(identifiers.length)];
        const b = identifiers[rng.int(identifiers.length)];
        if (sameTokens(x0, a, b)) continue;
        if (st.segment && st.segment[a.start] !== st.segment[b.start]) continue;
        const la = a.end - a.start;
        const lb = b.end - b.start;
        if (Math.max(la, lb) > remaining || !st.rangeFree(a.start, a.end)) continue;
        if (lb > la && !st.slotOk[a.end]) continue;
        const common = Math.min(la, lb);
        for (let i = 0; i < common; i++) st.substitute(a.start + i, x0[b.start + i]);
        for (let i = common; i < la; i++) st.remove(a.start + i);
        if (lb > la) st.insert(a.end, x0.subarray(b.start + la, b.end));
        return Math.max(la, lb);
      }
      return 0;
    },
    replaceOperator(st, rng) {
      for (let t = 0; t < TRIES && operatorAt.length; t++) {
        const i = operatorAt[rng.int(operatorAt.length)];
        if (!st.isFree(i)) continue;
        const group = v.operatorGroups[v.operatorGroup.get(x0[i])!];
        let tok = group[rng.int(group.length)];
        while (tok === x0[i]) tok = group[rng.int(group.length)];
        st.substitute(i, tok);
        return 1;
      }
      return 0;
    },
  };
}

/**
 * Edit x0 (a sequence without padding; BOS/EOS are kept as they are). `spans` index x0; `segment`, when
 * given, is carried to the edited sequence.
 */
export function editTokens(
  x0: Int32Array,
  spans: readonly Span[],
  rng: Rng,
  opts: EditOptions,
  segment?: Int32Array,
): EditResult {
  const alphaMax = opts.alphaMax ?? DEFAULT_ALPHA_MAX;
  if (!(alphaMax >= 0 && alphaMax <= 1)) throw new Error(`edit: alphaMax must be in [0, 1], got ${alphaMax}`);
  const alpha = opts.alpha ?? rng.float() * alphaMax;
  const st = new EditState(x0, opts.specials, segment);
  const budget = Math.floor(st.editable.length * alpha);
  const weights = opts.opWeights ?? (opts.structure ? STRUCTURE_OP_WEIGHTS : TOKEN_OP_WEIGHTS);
  const names = EDIT_OPS.filter((o) => (weights[o] ?? 0) > 0);
  const w = names.map((o) => weights[o] ?? 0);
  const attempts = makeAttempts(spans, opts.vocab, x0);
  const applied = Object.fromEntries(EDIT_OPS.map((o) => [o, 0])) as Record<EditOp, number>;
  let charged = 0;
  let failures = 0;
  // Structural ops can fail (no statement fits the remaining budget); token ops then fill the budget.
  while (charged < budget && names.length > 0 && failures < 200) {
    const k = rng.weighted(w);
    const cost = attempts[names[k]](st, rng, budget - charged);
    if (cost > 0) {
      charged += cost;
      applied[names[k]]++;
    } else {
      failures++;
    }
  }
  return { x0, ...st.build(), alpha, budget, charged, applied };
}
