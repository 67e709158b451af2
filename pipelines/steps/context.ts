import { readFile } from 'node:fs/promises';
import { loadTokenizer, sha256, tokenizerFromJson } from '../tokenizer/index.ts';
import type { Tokenizer } from '../tokenizer/types.ts';
import { readBpeTablesCache, writeBpeTablesCache } from './bpe-tables-cache.ts';
import type { SizeLimits } from './filters.ts';
import type { MinHashOptions } from './minhash.ts';
import type { StepContext } from './record.ts';
import { nativeEncoderFromTables, tsAddon, useTsAddon } from './ts-addon.ts';

/** What a worker needs to rebuild the step context on its side (plain data: it crosses threads). */
export interface StepContextSpec {
  limits: SizeLimits;
  minhash: MinHashOptions;
  tokenizerPath: string;
  /** The tree-sitter addon to parse with (ts-addon.ts); undefined: node-tree-sitter. */
  tsAddon: string | undefined;
}

export async function makeStepContext(spec: StepContextSpec): Promise<StepContext> {
  useTsAddon(spec.tsAddon);
  const addon = tsAddon();
  const { numPerm, shingle } = spec.minhash;
  const base = {
    limits: spec.limits,
    minhash: spec.minhash,
    minhashUtf8: addon && ((utf8: Uint8Array) => addon.minhash(utf8, numPerm, shingle)),
    textStats: addon && ((utf8: Uint8Array, probe: number) => addon.textStats(utf8, probe)),
    tokenSpans:
      addon && ((nodes: Int32Array, byteOffsets: Int32Array) => addon.tokenSpans(nodes, byteOffsets)),
  };
  if (addon) {
    // The native encoder from cached tables: the JS tokenizer is then built only if a text needs it
    // (characters outside the BMP, very long pieces), which most builds never meet.
    const raw = await readFile(spec.tokenizerPath).catch(() => undefined);
    const hash = raw && sha256(raw);
    const tables = hash && readBpeTablesCache(hash);
    if (raw && hash && tables) {
      let tokenizer: Tokenizer | undefined;
      return {
        ...base,
        get tokenizer() {
          // The file hashed to tables made from a valid tokenizer: parsing it cannot fail.
          tokenizer ??= tokenizerFromJson(raw.toString('utf8'), hash);
          return tokenizer;
        },
        encodeUtf8: nativeEncoderFromTables(tables),
      };
    }
  }
  // No cache yet (or no addon): load and check the tokenizer, and cache its tables for the next build.
  const tokenizer = await loadTokenizer(spec.tokenizerPath);
  const tables = tokenizer.nativeTables();
  if (addon && tables) writeBpeTablesCache(tokenizer.hash, tables);
  return { ...base, tokenizer, encodeUtf8: tables && nativeEncoderFromTables(tables) };
}
