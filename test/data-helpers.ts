import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { saveTokenizer, trainBpe } from '../pipelines/tokenizer/index.ts';
import { SPECIAL_TOKENS, type Tokenizer } from '../pipelines/tokenizer/types.ts';

/** One token per UTF-8 byte (ids 8..263), for span tests where a token range must equal a byte range. */
export function byteTokenizer(): Tokenizer {
  const n = SPECIAL_TOKENS.length;
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return {
    vocabSize: n + 256,
    special: { pad: 0, bos: 1, eos: 2, mask: 3, del: 4, fimPrefix: 5, fimMiddle: 6, fimSuffix: 7 },
    hash: 'bytes',
    encode: (text) => Int32Array.from(enc.encode(text), (b) => b + n),
    encodeWithOffsets(text) {
      const bytes = enc.encode(text);
      return {
        ids: Int32Array.from(bytes, (b) => b + n),
        byteOffsets: Int32Array.from({ length: bytes.length + 1 }, (_, i) => i),
      };
    },
    decode: (ids) => dec.decode(Uint8Array.from(Array.from(ids), (i) => i - n)),
    tokenText: (id) => dec.decode(Uint8Array.of(id - n)),
  };
}

export const tempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), `sdt-${prefix}-`));

/** A stdlib package folder with a few dozen .py files: the subset the end-to-end tests build. */
export function stdlibSubset(): { root: string; include: string[] } {
  const root = pythonStdlibDir();
  // json + email: 40-odd files, a few MB, with docstrings, non-ASCII text and test-like helpers.
  const include = ['json/*.py', 'email/*.py'];
  return { root, include };
}

/** Train a small BPE tokenizer (the tokenizer module's trainer) on some stdlib files and save it. */
export async function smallTokenizer(dir: string, vocabSize = 600): Promise<string> {
  const root = join(pythonStdlibDir(), 'json');
  const texts = readdirSync(root)
    .filter((f) => f.endsWith('.py'))
    .map((f) => readFileSync(join(root, f), 'utf8'));
  const path = join(dir, 'tokenizer.json');
  await saveTokenizer(path, await trainBpe(texts, { vocabSize }));
  return path;
}

export async function writeText(path: string, text: string | Uint8Array): Promise<string> {
  await writeFile(path, text);
  return path;
}
