import type { Rng } from '../corrupt/rng.ts';

/**
 * The typed primitives a synthetic task is composed of. Each primitive has an id (what a composition
 * names, constants excluded), the words the docstring uses for it and the code it becomes, given the
 * variable it applies to. Constants are drawn per task, so one composition has many instances.
 */

/** A predicate on an integer: "even", "greater than 3". */
export interface NumPredicate {
  id: string;
  /** Adjective phrase: "even", "greater than 3". */
  adj: string;
  /** Single-word adjectives go before the noun ("the even numbers"), others after ("that are ..."). */
  prenominal: boolean;
  /** Python condition on `v`; `neg` gives its negation written naturally. */
  code(v: string, neg?: boolean): string;
}

/** A map from integer to integer: "squared", "plus 3". */
export interface NumMap {
  id: string;
  /** After "each": "squared", "plus 3"; empty for the identity. */
  each: string;
  /** After "its"/"itself" in a dict: "its square", "itself plus 3". */
  its: string;
  /** Applied to a named value: "n squared", "the absolute value of n". */
  of(v: string): string;
  code(v: string, rng: Rng): string;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)];

/** A threshold in [-3, 9] but 0: "greater than 0" would be "positive", another primitive. */
const nonzero = (rng: Rng): number => {
  const c = rng.range(-3, 9);
  return c >= 0 ? c + 1 : c;
};

export function numPredicate(id: string, rng: Rng): NumPredicate {
  switch (id) {
    case 'even':
      return {
        id,
        adj: 'even',
        prenominal: true,
        code: (v, neg) => `${v} % 2 ${neg ? '!=' : '=='} 0`,
      };
    case 'odd':
      return { id, adj: 'odd', prenominal: true, code: (v, neg) => `${v} % 2 ${neg ? '==' : '!='} 0` };
    case 'positive':
      return { id, adj: 'positive', prenominal: true, code: (v, neg) => `${v} ${neg ? '<=' : '>'} 0` };
    case 'negative':
      return { id, adj: 'negative', prenominal: true, code: (v, neg) => `${v} ${neg ? '>=' : '<'} 0` };
    case 'nonzero':
      return { id, adj: 'nonzero', prenominal: true, code: (v, neg) => `${v} ${neg ? '==' : '!='} 0` };
    case 'gt': {
      const c = nonzero(rng);
      return {
        id,
        adj: `greater than ${c}`,
        prenominal: false,
        code: (v, neg) => `${v} ${neg ? '<=' : '>'} ${c}`,
      };
    }
    case 'lt': {
      const c = nonzero(rng);
      return {
        id,
        adj: `less than ${c}`,
        prenominal: false,
        code: (v, neg) => `${v} ${neg ? '>=' : '<'} ${c}`,
      };
    }
    case 'div': {
      const c = rng.range(3, 8);
      return {
        id,
        adj: `divisible by ${c}`,
        prenominal: false,
        code: (v, neg) => `${v} % ${c} ${neg ? '!=' : '=='} 0`,
      };
    }
  }
  throw new Error(`unknown number predicate ${id}`);
}

export const NUM_PREDICATES = ['even', 'odd', 'positive', 'negative', 'nonzero', 'gt', 'lt', 'div'] as const;

export function numMap(id: string, rng: Rng): NumMap {
  switch (id) {
    case 'id':
      return { id, each: '', its: 'itself', of: (v) => v, code: (v) => v };
    case 'square':
      return {
        id,
        each: 'squared',
        its: 'its square',
        of: (v) => `${v} squared`,
        code: (v, r) => (r.bernoulli(0.7) ? `${v} * ${v}` : `${v} ** 2`),
      };
    case 'double':
      return {
        id,
        each: 'doubled',
        its: 'its double',
        of: (v) => `${v} doubled`,
        code: (v, r) => (r.bernoulli(0.5) ? `2 * ${v}` : `${v} * 2`),
      };
    case 'negate':
      return { id, each: 'negated', its: 'its negation', of: (v) => `${v} negated`, code: (v) => `-${v}` };
    case 'abs':
      return {
        id,
        each: 'made absolute',
        its: 'its absolute value',
        of: (v) => `the absolute value of ${v}`,
        code: (v) => `abs(${v})`,
      };
    case 'plus': {
      const c = rng.range(1, 10);
      return {
        id,
        each: `plus ${c}`,
        its: `itself plus ${c}`,
        of: (v) => `${v} plus ${c}`,
        code: (v) => `${v} + ${c}`,
      };
    }
    case 'minus': {
      const c = rng.range(1, 10);
      return {
        id,
        each: `minus ${c}`,
        its: `itself minus ${c}`,
        of: (v) => `${v} minus ${c}`,
        code: (v) => `${v} - ${c}`,
      };
    }
    case 'times': {
      const c = rng.range(3, 10);
      return {
        id,
        each: `times ${c}`,
        its: `itself times ${c}`,
        of: (v) => `${v} times ${c}`,
        code: (v) => `${v} * ${c}`,
      };
    }
    case 'mod': {
      const c = rng.range(2, 10);
      return {
        id,
        each: `modulo ${c}`,
        its: `its remainder modulo ${c}`,
        of: (v) => `${v} modulo ${c}`,
        code: (v) => `${v} % ${c}`,
      };
    }
  }
  throw new Error(`unknown number map ${id}`);
}

export const NUM_MAPS = ['id', 'square', 'double', 'negate', 'abs', 'plus', 'minus', 'times', 'mod'] as const;

/** The numbers of `param` that satisfy `p`: "the even numbers in xs", "the numbers in xs that are ...". */
export function numbersPhrase(param: string, p: NumPredicate | undefined): string {
  if (!p) return `the numbers in ${param}`;
  return p.prenominal ? `the ${p.adj} numbers in ${param}` : `the numbers in ${param} that are ${p.adj}`;
}

/** A class of characters: "vowels", "digits". */
export interface CharClass {
  id: string;
  plural: string;
  singular: string;
  code(c: string, neg?: boolean): string;
}

export function charClass(id: string, rng: Rng): CharClass {
  const q = rng.bernoulli(0.5) ? "'" : '"';
  switch (id) {
    case 'vowel':
      return {
        id,
        plural: 'vowels',
        singular: 'vowel',
        code: (c, neg) => `${c} ${neg ? 'not in' : 'in'} ${q}aeiou${q}`,
      };
    case 'digit':
      return {
        id,
        plural: 'digits',
        singular: 'digit',
        code: (c, neg) => `${neg ? 'not ' : ''}${c}.isdigit()`,
      };
    case 'upper':
      return {
        id,
        plural: 'uppercase letters',
        singular: 'uppercase letter',
        code: (c, neg) => `${neg ? 'not ' : ''}${c}.isupper()`,
      };
    case 'lower':
      return {
        id,
        plural: 'lowercase letters',
        singular: 'lowercase letter',
        code: (c, neg) => `${neg ? 'not ' : ''}${c}.islower()`,
      };
    case 'space':
      return {
        id,
        plural: 'spaces',
        singular: 'space',
        code: (c, neg) => `${c} ${neg ? '!=' : '=='} ${q} ${q}`,
      };
    case 'letter':
      return {
        id,
        plural: 'letters',
        singular: 'letter',
        code: (c, neg) => `${neg ? 'not ' : ''}${c}.isalpha()`,
      };
  }
  throw new Error(`unknown character class ${id}`);
}

export const CHAR_CLASSES = ['vowel', 'digit', 'upper', 'lower', 'space', 'letter'] as const;

/** A predicate on a word: "are longer than 3 letters", "start with 'a'". */
export interface WordPredicate {
  id: string;
  /** After "the words of s that": "are longer than 3 letters". */
  that: string;
  code(w: string): string;
}

const WORD_LETTERS = 'abcdefghilmnoprst';

export function wordPredicate(id: string, rng: Rng): WordPredicate {
  switch (id) {
    case 'longer': {
      const c = rng.range(2, 6);
      return { id, that: `are longer than ${c} letters`, code: (w) => `len(${w}) > ${c}` };
    }
    case 'shorter': {
      const c = rng.range(3, 7);
      return { id, that: `are shorter than ${c} letters`, code: (w) => `len(${w}) < ${c}` };
    }
    case 'starts': {
      const ch = WORD_LETTERS[rng.int(WORD_LETTERS.length)];
      return { id, that: `start with '${ch}'`, code: (w) => `${w}.startswith('${ch}')` };
    }
    case 'ends': {
      const ch = WORD_LETTERS[rng.int(WORD_LETTERS.length)];
      return { id, that: `end with '${ch}'`, code: (w) => `${w}.endswith('${ch}')` };
    }
    case 'contains': {
      const ch = WORD_LETTERS[rng.int(WORD_LETTERS.length)];
      return { id, that: `contain '${ch}'`, code: (w) => `'${ch}' in ${w}` };
    }
    case 'capital':
      return { id, that: 'start with an uppercase letter', code: (w) => `${w}[0].isupper()` };
  }
  throw new Error(`unknown word predicate ${id}`);
}

export const WORD_PREDICATES = ['all', 'longer', 'shorter', 'starts', 'ends', 'contains', 'capital'] as const;

/** A map from word to string: "in uppercase", "reversed". */
export interface WordMap {
  id: string;
  /** After "each": "in uppercase"; empty for the identity. */
  each: string;
  code(w: string): string;
}

export function wordMap(id: string): WordMap {
  switch (id) {
    case 'id':
      return { id, each: '', code: (w) => w };
    case 'upper':
      return { id, each: 'in uppercase', code: (w) => `${w}.upper()` };
    case 'lower':
      return { id, each: 'in lowercase', code: (w) => `${w}.lower()` };
    case 'reverse':
      return { id, each: 'reversed', code: (w) => `${w}[::-1]` };
    case 'capitalize':
      return { id, each: 'capitalized', code: (w) => `${w}.capitalize()` };
    case 'first':
      return { id, each: 'cut to its first letter', code: (w) => `${w}[0]` };
  }
  throw new Error(`unknown word map ${id}`);
}

export const WORD_MAPS = ['id', 'upper', 'lower', 'reverse', 'capitalize', 'first'] as const;

/** Names a body may choose; the parameter names come from the signature, so they are given. */
export const NAMES = {
  functions: [
    'solve',
    'compute',
    'process',
    'transform',
    'calc',
    'select',
    'collect',
    'summarize',
    'evaluate',
    'pick',
    'combine',
    'measure',
    'score',
    'extract',
    'tally',
    'scan',
    'fold',
    'digest',
    'convert',
    'analyze',
  ],
  lists: ['xs', 'nums', 'values', 'items', 'data', 'numbers', 'arr', 'seq'],
  elements: ['x', 'v', 'item', 'num', 'value', 'e', 'a', 'k'],
  scalars: ['n', 'x', 'value', 'num', 'k', 'm'],
  strings: ['s', 'text', 'word', 'string', 'line'],
  chars: ['c', 'ch', 'char', 'letter'],
  sentences: ['s', 'text', 'sentence', 'line', 'phrase'],
  words: ['w', 'word', 'token', 'part'],
  accumulators: ['total', 'result', 'acc', 'res', 'answer', 'running'],
  collections: ['out', 'result', 'res', 'kept', 'found', 'picked'],
  helpers: ['is_good', 'keep', 'wanted', 'is_special', 'accept', 'is_valid', 'fits', 'matches'],
} as const;

const NAME_NOUNS = [
  'items',
  'values',
  'data',
  'input',
  'list',
  'text',
  'words',
  'parts',
  'result',
  'entries',
  'batch',
  'group',
];

/** A function name: a verb alone, or verb_noun (the name says nothing of the task, as in real code). */
export function functionName(rng: Rng): string {
  const verb = pick(rng, NAMES.functions);
  return rng.bernoulli(0.25) ? verb : `${verb}_${pick(rng, NAME_NOUNS)}`;
}

export function pickName(rng: Rng, pool: readonly string[], avoid: readonly string[] = []): string {
  for (;;) {
    const name = pick(rng, pool);
    if (!avoid.includes(name)) return name;
  }
}

export { pick };
