import { type Reject, reject } from './types.ts';

export interface SizeLimits {
  minBytes: number;
  maxBytes: number;
  maxLineLength: number;
  /** Files whose mean line is longer than this are minified or generated. */
  maxMeanLineLength: number;
}

export const DEFAULT_SIZE_LIMITS: SizeLimits = {
  minBytes: 16,
  maxBytes: 1_000_000,
  maxLineLength: 1000,
  maxMeanLineLength: 200,
};

/** Size and line-length filter: drops files too small to teach anything and generated or minified ones. */
export function checkSize(text: string, nBytes: number, limits: SizeLimits): Reject | undefined {
  // The byte limits first: a text that fails them is not scanned.
  const bySize = sizeReject(nBytes, 0, 0, 1, limits);
  if (bySize) return bySize;
  let longest = 0;
  let lines = 1;
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start > longest) longest = end - start;
    if (nl < 0) break;
    lines++;
    start = nl + 1;
  }
  return sizeReject(nBytes, text.length, longest, lines, limits);
}

/** checkSize from the text's byte size, length, longest line and line count (lengths in UTF-16 units). */
export function sizeReject(
  nBytes: number,
  length: number,
  longest: number,
  lines: number,
  limits: SizeLimits,
): Reject | undefined {
  if (nBytes < limits.minBytes)
    return reject('too-small', `${nBytes} bytes < --min-bytes ${limits.minBytes}`);
  if (nBytes > limits.maxBytes)
    return reject('too-large', `${nBytes} bytes > --max-bytes ${limits.maxBytes}`);
  if (longest > limits.maxLineLength) {
    return reject('long-line', `a line of ${longest} characters > --max-line-length ${limits.maxLineLength}`);
  }
  const mean = length / lines;
  if (mean > limits.maxMeanLineLength) {
    return reject('long-lines', `mean line length ${mean.toFixed(0)} > ${limits.maxMeanLineLength}`);
  }
  return undefined;
}
