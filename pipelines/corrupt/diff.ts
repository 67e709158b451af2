/**
 * A human view of one corrupted example: the clean text with the corruption marked inline. Colours on a
 * terminal; plain markers otherwise ([M:tok] masked, [-tok-] deleted, {+tok+} inserted), so logs and
 * pipes stay readable.
 */
import { alignTokens } from './align.ts';
import type { CorruptedExample } from './corrupt.ts';

export interface DiffStyle {
  masked(text: string): string;
  deleted(text: string): string;
  inserted(text: string): string;
}

export const PLAIN_STYLE: DiffStyle = {
  masked: (t) => `[M:${t}]`,
  deleted: (t) => `[-${t}-]`,
  inserted: (t) => `{+${t}+}`,
};

export const COLOR_STYLE: DiffStyle = {
  masked: (t) => `\x1b[30;43m${t}\x1b[0m`,
  deleted: (t) => `\x1b[9;31m${t}\x1b[0m`,
  inserted: (t) => `\x1b[4;32m${t}\x1b[0m`,
};

/** Whitespace made visible inside markers, so an inserted newline is seen rather than guessed. */
const visible = (t: string): string => t.replace(/\n/g, '\u21b5\n').replace(/\t/g, '\u2192');

export function renderExample(
  ex: CorruptedExample,
  tokenText: (id: number) => string,
  style: DiffStyle,
  maxTokens = 400,
): string {
  const parts: string[] = [];
  if (ex.kind === 'mask') {
    const n = Math.min(ex.input.length, maxTokens);
    for (let i = 0; i < n; i++) {
      const text = tokenText(ex.target[i]);
      parts.push(ex.weight[i] > 0 ? style.masked(visible(text)) : text);
    }
    if (ex.input.length > n) parts.push(` ... (${ex.input.length - n} more tokens)`);
    return parts.join('');
  }
  const { x0, edited } = ex.edit;
  const a = alignTokens(x0, edited);
  let k = 0;
  let shown = 0;
  for (let j = 0; j <= edited.length && shown < maxTokens; j++) {
    while (k < a.deletedBefore.length && a.deletedBefore[k] === j) {
      parts.push(style.deleted(visible(tokenText(x0[a.deletedIndex[k++]]))));
      shown++;
    }
    if (j === edited.length) break;
    const i = a.alignedTo[j];
    const text = tokenText(edited[j]);
    if (i >= 0 && x0[i] === edited[j]) parts.push(text);
    else {
      if (i >= 0) parts.push(style.deleted(visible(tokenText(x0[i]))));
      parts.push(style.inserted(visible(text)));
    }
    shown++;
  }
  if (shown >= maxTokens) parts.push(' ... (truncated)');
  return parts.join('');
}
