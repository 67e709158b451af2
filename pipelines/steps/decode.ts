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
  const probe = Math.min(text.length, 65536);
  for (let i = 0; i < probe; i++) {
    const c = text.charCodeAt(i);
    if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) control++;
  }
  if (control > probe * 0.01 + 8) return reject('binary', `${control} control characters in ${probe}`);
  return { text, nBytes };
}
