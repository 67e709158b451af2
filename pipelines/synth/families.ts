import type { Rng } from '../corrupt/rng.ts';
import {
  CHAR_CLASSES,
  charClass,
  functionName,
  NAMES,
  NUM_MAPS,
  NUM_PREDICATES,
  type NumMap,
  type NumPredicate,
  numbersPhrase,
  numMap,
  numPredicate,
  pick,
  pickName,
  WORD_MAPS,
  WORD_PREDICATES,
  wordMap,
  wordPredicate,
} from './primitives.ts';

/**
 * Task families: each turns a composition (a choice of primitives, no constants) and a random stream into
 * one task instance. A body is written in one of several styles (loop, comprehension, builtin, functional),
 * with names the body chooses, so one docstring has several correct bodies.
 */

/** What a test input looks like; the generator draws values of this kind. */
export type InputKind = 'ints' | 'int' | 'chars' | 'sentence';

export interface TaskDraft {
  family: string;
  /** Family and primitive ids, constants excluded: what splits are made of. */
  composition: string;
  entry: string;
  /** Definitions before the function (a helper), then the signature and docstring, ending at its quotes. */
  prompt: string;
  /** The reference completion: the body, starting with the line break after the docstring. */
  body: string;
  style: string;
  input: InputKind;
}

interface Family {
  name: string;
  /** Share of generated tasks. */
  weight: number;
  /** Every composition of the family, as slot lists. */
  compositions(): string[][];
  draft(slots: string[], rng: Rng): TaskDraft;
}

/** Lines as [indent level, text]; rendered at 4 spaces a level inside a function body. */
type Line = [number, string];

function render(lines: Line[]): string {
  return lines.map(([lvl, text]) => `\n${'    '.repeat(lvl + 1)}${text}`).join('');
}

function prompt(pre: string, entry: string, params: string, doc: string): string {
  return `${pre}def ${entry}(${params}):\n    """${doc}"""`;
}

const each = (m: NumMap): string => (m.each ? `, each ${m.each}` : '');

/** A loop over `seq` with an optional condition, then `inner` lines inside it. */
function loopLines(v: string, seq: string, cond: string | undefined, inner: Line[]): Line[] {
  const lines: Line[] = [[0, `for ${v} in ${seq}:`]];
  if (cond) {
    lines.push([1, `if ${cond}:`]);
    for (const [l, t] of inner) lines.push([l + 2, t]);
  } else {
    for (const [l, t] of inner) lines.push([l + 1, t]);
  }
  return lines;
}

const genTail = (cond: string | undefined): string => (cond ? ` if ${cond}` : '');

/** sum(...), [..], max(...) of E over `seq` filtered by `cond`, in a chosen style. */
function aggregateBody(
  agg: string,
  v: string,
  seq: string,
  cond: string | undefined,
  expr: string,
  rng: Rng,
  avoid: string[],
): { lines: Line[]; style: string } {
  const identity = expr === v;
  const styles =
    agg === 'product'
      ? ['loop']
      : agg === 'count'
        ? ['loop', 'builtin', 'len']
        : ['loop', 'builtin', 'functional'];
  const style = pick(rng, styles);
  const lam = `lambda ${v}:`;
  const filtered = cond ? `filter(${lam} ${cond}, ${seq})` : seq;
  const mapped = identity ? filtered : `map(${lam} ${expr}, ${filtered})`;
  if (style === 'builtin') {
    const gen = `${expr} for ${v} in ${seq}${genTail(cond)}`;
    switch (agg) {
      case 'sum':
        return { lines: [[0, identity && !cond ? `return sum(${seq})` : `return sum(${gen})`]], style };
      case 'list':
        return { lines: [[0, `return [${gen}]`]], style };
      case 'max':
      case 'min':
        return { lines: [[0, `return ${agg}((${gen}), default=0)`]], style };
      case 'count':
        return {
          lines: [[0, cond ? `return sum(1 for ${v} in ${seq} if ${cond})` : `return len(${seq})`]],
          style,
        };
    }
  }
  if (style === 'len')
    return { lines: [[0, `return len([${v} for ${v} in ${seq}${genTail(cond)}])`]], style };
  if (style === 'functional') {
    switch (agg) {
      case 'sum':
        return { lines: [[0, `return sum(${mapped})`]], style };
      case 'list':
        return { lines: [[0, `return list(${mapped})`]], style };
      case 'max':
      case 'min':
        return { lines: [[0, `return ${agg}(${mapped}, default=0)`]], style };
    }
  }
  // Loops: an accumulator the body names.
  if (agg === 'list') {
    const out = pickName(rng, NAMES.collections, avoid);
    return {
      lines: [
        [0, `${out} = []`],
        ...loopLines(v, seq, cond, [[0, `${out}.append(${expr})`]]),
        [0, `return ${out}`],
      ],
      style,
    };
  }
  const acc = pickName(rng, NAMES.accumulators, avoid);
  if (agg === 'max' || agg === 'min') {
    const cmp = agg === 'max' ? '>' : '<';
    return {
      lines: [
        [0, `${acc} = None`],
        ...loopLines(v, seq, cond, [
          [0, `if ${acc} is None or ${expr} ${cmp} ${acc}:`],
          [1, `${acc} = ${expr}`],
        ]),
        [0, `return 0 if ${acc} is None else ${acc}`],
      ],
      style,
    };
  }
  const init = agg === 'product' ? '1' : '0';
  const step =
    agg === 'product' ? `${acc} *= ${expr}` : agg === 'count' ? `${acc} += 1` : `${acc} += ${expr}`;
  return {
    lines: [[0, `${acc} = ${init}`], ...loopLines(v, seq, cond, [[0, step]]), [0, `return ${acc}`]],
    style,
  };
}

const AGG_DOCS: Record<string, (nums: string, m: NumMap) => string> = {
  sum: (nums, m) => `Return the sum of ${nums}${each(m)}.`,
  product: (nums, m) => `Return the product of ${nums}${each(m)}.`,
  max: (nums, m) => `Return the largest of ${nums}${each(m)}, or 0 if there are none.`,
  min: (nums, m) => `Return the smallest of ${nums}${each(m)}, or 0 if there are none.`,
  list: (nums, m) => `Return a list of ${nums}${each(m)}, in order.`,
  count: (nums) => `Return the count of ${nums}.`,
};
const AGGS = Object.keys(AGG_DOCS);

function cross(...axes: readonly (readonly string[])[]): string[][] {
  let out: string[][] = [[]];
  for (const axis of axes) out = out.flatMap((prefix) => axis.map((x) => [...prefix, x]));
  return out;
}

const maybePredicate = (id: string, rng: Rng): NumPredicate | undefined =>
  id === 'all' ? undefined : numPredicate(id, rng);

const listAggregate: Family = {
  name: 'list-aggregate',
  weight: 30,
  compositions: () =>
    cross(['all', ...NUM_PREDICATES], NUM_MAPS, AGGS).filter(([, m, a]) => a !== 'count' || m === 'id'),
  draft([pid, mid, agg], rng) {
    const p = maybePredicate(pid, rng);
    const m = numMap(mid, rng);
    const entry = functionName(rng);
    const seq = pick(rng, NAMES.lists);
    const v = pickName(rng, NAMES.elements, [seq]);
    const doc = AGG_DOCS[agg](numbersPhrase(seq, p), m);
    const { lines, style } = aggregateBody(agg, v, seq, p?.code(v), m.code(v, rng), rng, [seq, v]);
    return {
      family: this.name,
      composition: `${this.name}:${pid}:${mid}:${agg}`,
      entry,
      prompt: prompt('', entry, seq, doc),
      body: render(lines),
      style,
      input: 'ints',
    };
  },
};

const HELPER_AGGS = ['sum', 'product', 'max', 'list', 'count'];

const helperCall: Family = {
  name: 'helper-call',
  weight: 10,
  compositions: () => cross(NUM_MAPS, HELPER_AGGS).filter(([m, a]) => a !== 'count' || m === 'id'),
  draft([mid, agg], rng) {
    const p = numPredicate(pick(rng, NUM_PREDICATES), rng);
    const m = numMap(mid, rng);
    const helper = pick(rng, NAMES.helpers);
    const arg = pick(rng, NAMES.scalars);
    const entry = functionName(rng);
    const seq = pick(rng, NAMES.lists);
    const v = pickName(rng, NAMES.elements, [seq]);
    const nums = `the numbers in ${seq} for which ${helper} is true`;
    const doc = AGG_DOCS[agg](nums, m);
    const pre = `def ${helper}(${arg}):\n    return ${p.code(arg)}\n\n\n`;
    const { lines, style } = aggregateBody(agg, v, seq, `${helper}(${v})`, m.code(v, rng), rng, [seq, v]);
    return {
      family: this.name,
      composition: `${this.name}:${mid}:${agg}`,
      entry,
      prompt: prompt(pre, entry, seq, doc),
      body: render(lines),
      style,
      input: 'ints',
    };
  },
};

const firstMatch: Family = {
  name: 'first-match',
  weight: 6,
  compositions: () => cross(NUM_PREDICATES, NUM_MAPS),
  draft([pid, mid], rng) {
    const p = numPredicate(pid, rng);
    const m = numMap(mid, rng);
    const entry = functionName(rng);
    const seq = pick(rng, NAMES.lists);
    const v = pickName(rng, NAMES.elements, [seq]);
    const dflt = pick(rng, ['-1', '0', 'None']);
    const doc = `Return the first of ${numbersPhrase(seq, p)}${each(m)}, or ${dflt} if there is none.`;
    const expr = m.code(v, rng);
    const style = pick(rng, ['loop', 'builtin']);
    const lines: Line[] =
      style === 'builtin'
        ? [[0, `return next((${expr} for ${v} in ${seq} if ${p.code(v)}), ${dflt})`]]
        : [...loopLines(v, seq, p.code(v), [[0, `return ${expr}`]]), [0, `return ${dflt}`]];
    return {
      family: this.name,
      composition: `${this.name}:${pid}:${mid}`,
      entry,
      prompt: prompt('', entry, seq, doc),
      body: render(lines),
      style,
      input: 'ints',
    };
  },
};

const quantifier: Family = {
  name: 'quantifier',
  weight: 5,
  compositions: () => cross(['any', 'all'], NUM_PREDICATES),
  draft([q, pid], rng) {
    const p = numPredicate(pid, rng);
    const entry = functionName(rng);
    const seq = pick(rng, NAMES.lists);
    const v = pickName(rng, NAMES.elements, [seq]);
    const doc =
      q === 'any'
        ? `Return True if any number in ${seq} is ${p.adj}, and False otherwise.`
        : `Return True if every number in ${seq} is ${p.adj}, and False otherwise.`;
    const style = pick(rng, ['loop', 'builtin']);
    const lines: Line[] =
      style === 'builtin'
        ? [[0, `return ${q}(${p.code(v)} for ${v} in ${seq})`]]
        : q === 'any'
          ? [...loopLines(v, seq, p.code(v), [[0, 'return True']]), [0, 'return False']]
          : [...loopLines(v, seq, p.code(v, true), [[0, 'return False']]), [0, 'return True']];
    return {
      family: this.name,
      composition: `${this.name}:${q}:${pid}`,
      entry,
      prompt: prompt('', entry, seq, doc),
      body: render(lines),
      style,
      input: 'ints',
    };
  },
};

const scalarBranch: Family = {
  name: 'scalar-branch',
  weight: 12,
  compositions: () => cross(NUM_PREDICATES, NUM_MAPS, NUM_MAPS).filter(([, a, b]) => a !== b),
  draft([pid, aid, bid], rng) {
    const p = numPredicate(pid, rng);
    const a = numMap(aid, rng);
    const b = numMap(bid, rng);
    const entry = functionName(rng);
    const n = pick(rng, NAMES.scalars);
    const doc = `Return ${a.of(n)} if ${n} is ${p.adj}, and ${b.of(n)} otherwise.`;
    const ea = a.code(n, rng);
    const eb = b.code(n, rng);
    const style = pick(rng, ['ternary', 'if-else', 'early-return']);
    const lines: Line[] =
      style === 'ternary'
        ? [[0, `return ${ea} if ${p.code(n)} else ${eb}`]]
        : style === 'if-else'
          ? [
              [0, `if ${p.code(n)}:`],
              [1, `return ${ea}`],
              [0, 'else:'],
              [1, `return ${eb}`],
            ]
          : [
              [0, `if ${p.code(n)}:`],
              [1, `return ${ea}`],
              [0, `return ${eb}`],
            ];
    return {
      family: this.name,
      composition: `${this.name}:${pid}:${aid}:${bid}`,
      entry,
      prompt: prompt('', entry, n, doc),
      body: render(lines),
      style,
      input: 'int',
    };
  },
};

const CHAR_OPS = ['count', 'remove', 'keep', 'replace'];

const characters: Family = {
  name: 'characters',
  weight: 10,
  compositions: () => cross(CHAR_OPS, CHAR_CLASSES),
  draft([op, cid], rng) {
    const cls = charClass(cid, rng);
    const entry = functionName(rng);
    const s = pick(rng, NAMES.strings);
    const c = pickName(rng, NAMES.chars, [s]);
    const q = rng.bernoulli(0.5) ? "'" : '"';
    const empty = `${q}${q}`;
    const fill = pick(rng, ['*', '#', '-', '_', '.', '!', '?']);
    const docs: Record<string, string> = {
      count: `Return the number of ${cls.plural} in ${s}.`,
      remove: `Return ${s} without its ${cls.plural}.`,
      keep: `Return the ${cls.plural} of ${s} as a string, in order.`,
      replace: `Return ${s} with every ${cls.singular} replaced by '${fill}'.`,
    };
    let lines: Line[];
    let style: string;
    if (op === 'count') {
      style = pick(rng, ['loop', 'builtin', 'len']);
      const acc = pickName(rng, NAMES.accumulators, [s, c]);
      lines =
        style === 'builtin'
          ? [[0, `return sum(1 for ${c} in ${s} if ${cls.code(c)})`]]
          : style === 'len'
            ? [[0, `return len([${c} for ${c} in ${s} if ${cls.code(c)}])`]]
            : [
                [0, `${acc} = 0`],
                ...loopLines(c, s, cls.code(c), [[0, `${acc} += 1`]]),
                [0, `return ${acc}`],
              ];
    } else {
      style = pick(rng, ['loop', 'builtin']);
      const out = pickName(rng, NAMES.collections, [s, c]);
      const fillLit = `${q}${fill}${q}`;
      if (op === 'replace') {
        lines =
          style === 'builtin'
            ? [[0, `return ${empty}.join(${fillLit} if ${cls.code(c)} else ${c} for ${c} in ${s})`]]
            : [
                [0, `${out} = ${empty}`],
                [0, `for ${c} in ${s}:`],
                [1, `if ${cls.code(c)}:`],
                [2, `${out} += ${fillLit}`],
                [1, 'else:'],
                [2, `${out} += ${c}`],
                [0, `return ${out}`],
              ];
      } else {
        const cond = cls.code(c, op === 'remove');
        lines =
          style === 'builtin'
            ? [[0, `return ${empty}.join(${c} for ${c} in ${s} if ${cond})`]]
            : [
                [0, `${out} = ${empty}`],
                ...loopLines(c, s, cond, [[0, `${out} += ${c}`]]),
                [0, `return ${out}`],
              ];
      }
    }
    return {
      family: this.name,
      composition: `${this.name}:${op}:${cid}`,
      entry,
      prompt: prompt('', entry, s, docs[op]),
      body: render(lines),
      style,
      input: 'chars',
    };
  },
};

const WORD_AGGS = ['join', 'list', 'count'];

const words: Family = {
  name: 'words',
  weight: 14,
  compositions: () =>
    cross(WORD_PREDICATES, WORD_MAPS, WORD_AGGS).filter(([, m, a]) => a !== 'count' || m === 'id'),
  draft([pid, mid, agg], rng) {
    const p = pid === 'all' ? undefined : wordPredicate(pid, rng);
    const m = wordMap(mid);
    const entry = functionName(rng);
    const s = pick(rng, NAMES.sentences);
    const w = pickName(rng, NAMES.words, [s]);
    const sep = pick(rng, [' ', ', ', '-', '+', '/']);
    const that = p ? ` that ${p.that}` : '';
    const eachWord = m.each ? `, each ${m.each}` : '';
    const docs: Record<string, string> = {
      join: `Return the words of ${s}${that}${eachWord}, joined by '${sep}'.`,
      list: `Return a list of the words of ${s}${that}${eachWord}.`,
      count: `Return the number of words of ${s}${that}.`,
    };
    const seq = `${s}.split()`;
    const cond = p?.code(w);
    const expr = m.code(w);
    const gen = `${expr} for ${w} in ${seq}${genTail(cond)}`;
    let style: string;
    let lines: Line[];
    if (agg === 'count') {
      style = pick(rng, ['loop', 'builtin', 'len']);
      const acc = pickName(rng, NAMES.accumulators, [s, w]);
      lines =
        style === 'builtin'
          ? [[0, cond ? `return sum(1 for ${w} in ${seq} if ${cond})` : `return len(${seq})`]]
          : style === 'len'
            ? [[0, `return len([${gen}])`]]
            : [[0, `${acc} = 0`], ...loopLines(w, seq, cond, [[0, `${acc} += 1`]]), [0, `return ${acc}`]];
    } else {
      style = pick(rng, ['loop', 'builtin']);
      const out = pickName(rng, NAMES.collections, [s, w]);
      const finish = agg === 'join' ? `'${sep}'.join(${out})` : out;
      lines =
        style === 'builtin'
          ? [[0, agg === 'join' ? `return '${sep}'.join(${gen})` : `return [${gen}]`]]
          : [
              [0, `${out} = []`],
              ...loopLines(w, seq, cond, [[0, `${out}.append(${expr})`]]),
              [0, `return ${finish}`],
            ];
    }
    return {
      family: this.name,
      composition: `${this.name}:${pid}:${mid}:${agg}`,
      entry,
      prompt: prompt('', entry, s, docs[agg]),
      body: render(lines),
      style,
      input: 'sentence',
    };
  },
};

const COUNT_KEY_MAPS = ['id', 'abs', 'square', 'negate', 'mod'];
const WORD_VALUES: Record<string, { its: string; code: (w: string) => string }> = {
  length: { its: 'its length', code: (w) => `len(${w})` },
  upper: { its: 'its uppercase form', code: (w) => `${w}.upper()` },
  first: { its: 'its first letter', code: (w) => `${w}[0]` },
  reverse: { its: 'its reverse', code: (w) => `${w}[::-1]` },
};

const dicts: Family = {
  name: 'dicts',
  weight: 13,
  compositions: () => [
    ...cross(['map'], ['all', ...NUM_PREDICATES], NUM_MAPS),
    ...cross(['count'], ['all', ...NUM_PREDICATES], COUNT_KEY_MAPS),
    ...cross(['words'], WORD_PREDICATES, Object.keys(WORD_VALUES)),
  ],
  draft([kind, pid, mid], rng) {
    const entry = functionName(rng);
    const out = pickName(rng, ['out', 'result', 'counts', 'table', 'mapping', 'd'], []);
    const style = pick(rng, ['loop', 'builtin']);
    let doc: string;
    let lines: Line[];
    let param: string;
    let input: InputKind = 'ints';
    if (kind === 'words') {
      const p = pid === 'all' ? undefined : wordPredicate(pid, rng);
      const val = WORD_VALUES[mid];
      param = pick(rng, NAMES.sentences);
      const w = pickName(rng, NAMES.words, [param, out]);
      const seq = `${param}.split()`;
      doc = `Return a dict mapping each word of ${param}${p ? ` that ${p.that}` : ''} to ${val.its}.`;
      const cond = p?.code(w);
      lines =
        style === 'builtin'
          ? [[0, `return {${w}: ${val.code(w)} for ${w} in ${seq}${genTail(cond)}}`]]
          : [
              [0, `${out} = {}`],
              ...loopLines(w, seq, cond, [[0, `${out}[${w}] = ${val.code(w)}`]]),
              [0, `return ${out}`],
            ];
      input = 'sentence';
    } else {
      const p = maybePredicate(pid, rng);
      const m = numMap(mid, rng);
      param = pick(rng, NAMES.lists);
      const v = pickName(rng, NAMES.elements, [param, out]);
      const expr = m.code(v, rng);
      const cond = p?.code(v);
      const nums = numbersPhrase(param, p);
      if (kind === 'map') {
        doc = `Return a dict mapping each of ${nums} to ${m.its}.`;
        lines =
          style === 'builtin'
            ? [[0, `return {${v}: ${expr} for ${v} in ${param}${genTail(cond)}}`]]
            : [
                [0, `${out} = {}`],
                ...loopLines(v, param, cond, [[0, `${out}[${v}] = ${expr}`]]),
                [0, `return ${out}`],
              ];
      } else {
        doc = `Return a dict counting how often each value occurs among ${nums}${each(m)}.`;
        lines = [
          [0, `${out} = {}`],
          ...loopLines(
            v,
            param,
            cond,
            style === 'builtin'
              ? [[0, `${out}[${expr}] = ${out}.get(${expr}, 0) + 1`]]
              : [
                  [0, `if ${expr} in ${out}:`],
                  [1, `${out}[${expr}] += 1`],
                  [0, 'else:'],
                  [1, `${out}[${expr}] = 1`],
                ],
          ),
          [0, `return ${out}`],
        ];
      }
    }
    return {
      family: this.name,
      composition: `${this.name}:${kind}:${pid}:${mid}`,
      entry,
      prompt: prompt('', entry, param, doc),
      body: render(lines),
      style,
      input,
    };
  },
};

export const FAMILIES: Family[] = [
  listAggregate,
  helperCall,
  firstMatch,
  quantifier,
  scalarBranch,
  characters,
  words,
  dicts,
];

/** Every composition key of every family. */
export function allCompositions(): { family: Family; slots: string[]; key: string }[] {
  return FAMILIES.flatMap((family) =>
    family.compositions().map((slots) => ({ family, slots, key: `${family.name}:${slots.join(':')}` })),
  );
}
