/**
 * A hand-written scanner equivalent to SPLIT_PATTERN (pretokenize.ts), about twice as fast as the regex
 * engine on code. It is used only for that exact pattern; test/tokenizer.test.ts checks that it cuts
 * random and real text exactly where the regex does.
 */
const F_L = 1; // \p{L}
const F_M = 2; // \p{M}
const F_N = 4; // \p{N}
const F_WS = 8; // \p{White_Space}
const F_NL = 16; // \r or \n
const F_HSP = 32; // space or tab
const F_LM = F_L | F_M;
/** Characters that are none of these make up punctuation runs. */
const F_NOT_PUNCT = F_L | F_N | F_WS;

const PROPERTIES: Array<[RegExp, number]> = [
  [/\p{L}+/gu, F_L],
  [/\p{M}+/gu, F_M],
  [/\p{N}+/gu, F_N],
  [/\p{White_Space}+/gu, F_WS],
  [/[\r\n]+/gu, F_NL],
  [/[ \t]+/gu, F_HSP],
];

/**
 * Class flags of every BMP code unit; surrogates get 0 here and are resolved while scanning. Exported for
 * the data build's native encoder (native/node/bpe.c), which uses the same flag bits. Built on first use
 * (~15 ms of regex scans): a data worker that has its encoder tables cached never needs it.
 */
export function bmpFlags(): Uint8Array {
  if (BMP.length === 0) BMP = buildBmp();
  return BMP;
}

let BMP: Uint8Array = new Uint8Array(0);

function buildBmp(): Uint8Array {
  const table = new Uint8Array(65536);
  const units = new Uint16Array(65536);
  for (let c = 0; c < 65536; c++) units[c] = c >= 0xd800 && c <= 0xdfff ? 0 : c;
  let all = '';
  for (let c = 0; c < 65536; c += 4096) all += String.fromCharCode(...units.subarray(c, c + 4096));
  for (const [re, flag] of PROPERTIES) {
    for (const m of all.matchAll(re)) {
      for (let i = m.index; i < m.index + m[0].length; i++) table[i] |= flag;
    }
  }
  return table;
}

const astral = new Map<number, number>();
function astralFlags(cp: number): number {
  let f = astral.get(cp);
  if (f === undefined) {
    const s = String.fromCodePoint(cp);
    f = 0;
    for (const [re, flag] of PROPERTIES) {
      re.lastIndex = 0;
      if (re.test(s)) f |= flag;
    }
    astral.set(cp, f);
  }
  return f;
}

/** Flags of the code point at i; its width in code units is left in `width`. */
let width = 1;
function flagsAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdfff) {
    width = 1;
    return BMP[c];
  }
  if (c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) {
      width = 2;
      return astralFlags(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
    }
  }
  width = 1; // a lone surrogate: a code point of its own with no letter/number/space property
  return 0;
}

/** End of the run of code points from i whose flags intersect `mask`. */
function runWith(text: string, i: number, mask: number): number {
  const n = text.length;
  while (i < n) {
    const f = flagsAt(text, i);
    if ((f & mask) === 0) break;
    i += width;
  }
  return i;
}

/** End of the run of punctuation (not letter, number or whitespace) from i. */
function punctRun(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const f = flagsAt(text, i);
    if ((f & F_NOT_PUNCT) !== 0) break;
    i += width;
  }
  return i;
}

/** End (exclusive) of the SPLIT_PATTERN piece that starts at i < text.length. */
export function splitPieceEnd(text: string, i: number): number {
  bmpFlags();
  const n = text.length;
  const f0 = flagsAt(text, i);
  const w0 = width;
  // 1. [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+ : a mark may lead, and then it is just part of the run.
  if ((f0 & F_LM) !== 0) return runWith(text, i, F_LM);
  if ((f0 & (F_NL | F_L | F_N)) === 0 && i + w0 < n && (flagsAt(text, i + w0) & F_LM) !== 0) {
    return runWith(text, i + w0, F_LM);
  }
  // 2. \p{N}{1,3}
  if ((f0 & F_N) !== 0) {
    let j = i + w0;
    for (let k = 1; k < 3 && j < n; k++) {
      if ((flagsAt(text, j) & F_N) === 0) break;
      j += width;
    }
    return j;
  }
  // 3. " ?[^\p{White_Space}\p{L}\p{N}]+"
  if (text.charCodeAt(i) === 0x20 && i + 1 < n && (flagsAt(text, i + 1) & F_NOT_PUNCT) === 0) {
    return punctRun(text, i + 1);
  }
  if ((f0 & F_NOT_PUNCT) === 0) return punctRun(text, i);
  // Only whitespace is left (all of it is in the BMP, one code unit per character).
  const wsEnd = runWith(text, i, F_WS);
  // 4. \p{White_Space}*[\r\n][ \t]* : up to the last line break of the run, then the indentation.
  for (let k = wsEnd - 1; k >= i; k--) {
    if ((BMP[text.charCodeAt(k)] & F_NL) !== 0) return runWith(text, k + 1, F_HSP);
  }
  // 5. \p{White_Space}+(?!\P{White_Space}) leaves the last space to the next piece; 6. \p{White_Space}+
  if (wsEnd < n && wsEnd - i >= 2) return wsEnd - 1;
  return wsEnd;
}
