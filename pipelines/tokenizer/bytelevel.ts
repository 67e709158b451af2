/**
 * The byte-level alphabet of Hugging Face / GPT-2 tokenizers: every byte gets a printable Unicode character
 * so that token strings in tokenizer.json are valid, visible text. Printable Latin-1 bytes map to
 * themselves; the remaining 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100 upward, in byte order.
 */
function isPrintableLatin1(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildByteToChar(): string[] {
  const out = new Array<string>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    out[b] = String.fromCharCode(isPrintableLatin1(b) ? b : next++);
  }
  return out;
}

/** BYTE_TO_CHAR[b] is the character that stands for byte b in token strings. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

const CHAR_TO_BYTE = new Map<number, number>(BYTE_TO_CHAR.map((c, b) => [c.charCodeAt(0), b]));

/** The token string of a byte sequence. */
export function bytesToTokenString(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** The bytes of a token string; undefined when it holds a character outside the byte alphabet. */
export function tokenStringToBytes(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token.charCodeAt(i));
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}
