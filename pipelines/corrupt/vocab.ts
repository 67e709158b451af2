/**
 * What edit corruptions need to know about the vocabulary: which ids are ordinary tokens (safe to insert
 * at random), which are operators (for operator replacement) and which end a line (for line duplication).
 * Built once from the tokenizer's token texts; plain data, so it can be sent to worker threads.
 */
import { SPECIAL_TOKENS, type Tokenizer } from '../tokenizer/types.ts';

// biome-ignore format: one table reads better than one operator per line
/** Operators of Python and C-like languages; keyword operators are included because they swap cleanly. */
export const OPERATOR_TEXTS: readonly string[] = [
  '+', '-', '*', '/', '//', '%', '**', '@', '<<', '>>', '&', '|', '^', '~',
  '<', '>', '<=', '>=', '==', '!=', '=', ':=', '->',
  '+=', '-=', '*=', '/=', '//=', '%=', '**=', '@=', '<<=', '>>=', '&=', '|=', '^=',
  '&&', '||', '!', 'and', 'or', 'not', 'in', 'is',
];

export interface EditVocabulary {
  /** Ordinary (non-special) ids are [randomLo, randomHi): random insertions and substitutions use them. */
  randomLo: number;
  randomHi: number;
  /** Operator token id -> its group: same surrounding whitespace, and symbols or keywords, not both. */
  operatorGroup: Map<number, number>;
  /** Operator ids per group. */
  operatorGroups: number[][];
  /** Ids whose text contains a newline: they end a line. */
  newlineIds: Set<number>;
}

/** A vocabulary with no operator or line knowledge: token-level edits only. */
export function plainVocabulary(vocabSize: number, firstOrdinary = SPECIAL_TOKENS.length): EditVocabulary {
  return {
    randomLo: firstOrdinary,
    randomHi: vocabSize,
    operatorGroup: new Map(),
    operatorGroups: [],
    newlineIds: new Set(),
  };
}

/** Build from token surface texts (index = id). Specials are the first `firstOrdinary` ids. */
export function vocabularyFromTexts(
  texts: readonly string[],
  firstOrdinary = SPECIAL_TOKENS.length,
): EditVocabulary {
  const v = plainVocabulary(texts.length, firstOrdinary);
  const ops = new Set(OPERATOR_TEXTS);
  const groupIndex = new Map<string, number>();
  for (let id = firstOrdinary; id < texts.length; id++) {
    const text = texts[id];
    if (text.includes('\n')) v.newlineIds.add(id);
    const core = text.trim();
    if (!ops.has(core)) continue;
    // Group by the surrounding whitespace so a replacement keeps the spacing of the original.
    const at = text.indexOf(core);
    // Keyword operators (and, or, in, is, not) only swap among themselves: `a + b` -> `a or b` is noise.
    const word = /^[a-z]+$/.test(core) ? 'w' : 's';
    const key = `${word}${text.slice(0, at)}\u0000${text.slice(at + core.length)}`;
    let g = groupIndex.get(key);
    if (g === undefined) {
      g = v.operatorGroups.length;
      groupIndex.set(key, g);
      v.operatorGroups.push([]);
    }
    v.operatorGroups[g].push(id);
    v.operatorGroup.set(id, g);
  }
  return v;
}

export function vocabularyFromTokenizer(tok: Tokenizer): EditVocabulary {
  const texts: string[] = [];
  for (let id = 0; id < tok.vocabSize; id++) texts.push(tok.tokenText(id));
  return vocabularyFromTexts(texts);
}
