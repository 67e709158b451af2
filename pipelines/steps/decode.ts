import { isUtf8 } from 'node:buffer';
import { type Reject, reject } from './types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// With the u flag a surrogate class only matches unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Bytes to text, refusing what is not text: invalid UTF-8, NUL bytes (the usual mark of a binary file),
 * and text that is mostly control characters. Text given by a tabular source is checked the same way.
 */
export function decodeText(input: Uint8Array | string): { text: string; nBytes: number } | Reject {
  let text: string;
  let nBytes: number;
  if (typeof input === 'string') {
    if (LONE_SURROGATE.test(input)) return reject('invalid-utf8', 'lone UTF-16 surrogate');
    text = input;
    nBytes = Buffer.byteLength(input, 'utf8');
  } else {
    nBytes = input.length;
    if (input.indexOf(0) >= 0) return reject('binary', `NUL byte at offset ${input.indexOf(0)}`);
    try {
      text = utf8.decode(input);
    } catch {
      return reject('invalid-utf8', `not valid UTF-8 (${nBytes} bytes)`);
    }
  }
  if (text.length === 0) return reject('empty', 'no content');
  const nul = text.indexOf('\0');
  if (nul >= 0) return reject('binary', `NUL character at index ${nul}`);
  // Control characters other than tab, newline, CR and form feed are rare in source code.
  let control = 0;
  const probe = Math.min(text.length, CONTROL_PROBE);
  for (let i = 0; i < probe; i++) {
    const c = text.charCodeAt(i);
    if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) control++;
  }
  return controlReject(control, probe) ?? { text, nBytes };
}

/** UTF-16 units at the start of a text in which control characters are counted. */
const CONTROL_PROBE = 65536;

const controlReject = (control: number, probe: number): Reject | undefined =>
  control > probe * 0.01 + 8 ? reject('binary', `${control} control characters in ${probe}`) : undefined;

/** What the size filter needs to know of a text, in UTF-16 units (see filters.ts sizeReject). */
export interface TextStats {
  nBytes: number;
  /** The text's length as a JS string. */
  length: number;
  longestLine: number;
  lines: number;
}

/**
 * decodeText's verdict on bytes without making a string of them, for the data build's native path:
 * the same rejects with the same details. `stats` is the addon's textStats (native/node/text.c).
 */
export function decodeStats(
  input: Uint8Array,
  stats: (utf8: Uint8Array, probe: number) => Int32Array,
): TextStats | Reject {
  const nBytes = input.length;
  if (input.indexOf(0) >= 0) return reject('binary', `NUL byte at offset ${input.indexOf(0)}`);
  // The WHATWG decoder's fatal mode and isUtf8 accept exactly the well-formed UTF-8 (test/data-steps).
  if (!isUtf8(input)) return reject('invalid-utf8', `not valid UTF-8 (${nBytes} bytes)`);
  if (nBytes === 0) return reject('empty', 'no content');
  const [length, control, longestLine, lines] = stats(input, CONTROL_PROBE);
  return controlReject(control, Math.min(length, CONTROL_PROBE)) ?? { nBytes, length, longestLine, lines };
}
