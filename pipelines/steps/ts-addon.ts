import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../../common/native.ts';
import { BpeTokenizer } from '../tokenizer/bpe-model.ts';
import type { Encoding, Tokenizer } from '../tokenizer/types.ts';
import type { NativeBpeTables } from './bpe-tables-cache.ts';

/**
 * native/node/ts_spans.c, built by `npm run build:native` into native/build/sdt_ts_spans.node: tree-sitter
 * parse and span walk in one call, on UTF-8 bytes (node-tree-sitter's cursor costs an N-API call per node
 * property or move, which made the walk cost as much as half the parse), the BPE encoder (bpe.c) and the
 * MinHash signature (minhash.c).
 */
export interface TsSpansAddon {
  /** [name, named] of every symbol of the language, by symbol id (ERROR, 65535, not included). */
  symbols(language: unknown): [string, boolean][];
  /**
   * [ERROR and MISSING node count, then (span kind, start byte, end byte) of every node whose symbol has a
   * kind >= 0 in `kinds` and whose range is not empty, in pre-order].
   */
  parse(language: unknown, utf8: Uint8Array, kinds: Int16Array): Int32Array;
  parseOnly(language: unknown, utf8: Uint8Array): boolean;
  /** An encoder with BpeTokenizer.nativeTables()'s tables, in that order (native/node/bpe.c). */
  bpeCreate(
    byteId: Int32Array,
    tokenLength: Int32Array,
    lefts: Int32Array,
    rights: Int32Array,
    ranks: Int32Array,
    mergedId: Int32Array,
    classFlags: Uint8Array,
  ): unknown;
  /** nodesToSpanArrays (spans.ts) as [kind, start, end]: the same spans. */
  tokenSpans(nodes: Int32Array, byteOffsets: Int32Array): [Uint8Array, Int32Array, Int32Array];
  /** [UTF-16 length, control characters in the first `probe` units, longest line, lines] of valid UTF-8. */
  textStats(utf8: Uint8Array, probe: number): Int32Array;
  /** minhashSignature (minhash.ts) of the text given as UTF-8 bytes: the same values. */
  minhash(utf8: Uint8Array, numPerm: number, shingle: number): Uint32Array;
  /** [ids, byte offsets] of UTF-8 text, or undefined for text it leaves to the JS encoder. */
  bpeEncode(encoder: unknown, utf8: Uint8Array): [Int32Array, Int32Array] | undefined;
}

/**
 * Where the addon is looked for: $SDT_TS_ADDON (a path, or "off" to walk through node-tree-sitter
 * instead), else the native build directory. Worker threads run from a bundle whose own location says
 * nothing about the repository, so the main thread resolves this and passes it on (see context.ts).
 */
export function tsAddonPath(): string | undefined {
  const env = process.env.SDT_TS_ADDON;
  if (env === 'off') return undefined;
  if (env) return env;
  const dir = process.env.SDT_NATIVE_BUILD_DIR ?? join(repoRoot, 'native', 'build');
  return join(dir, 'sdt_ts_spans.node');
}

let chosen: string | undefined | null = null;
let loaded: TsSpansAddon | undefined | null = null;

/** Use the addon at `path` (undefined: none) in this thread, instead of tsAddonPath()'s. */
export function useTsAddon(path: string | undefined): void {
  chosen = path;
  loaded = null;
}

/** The addon, or undefined when it is not built (or disabled): callers then use node-tree-sitter. */
export function tsAddon(): TsSpansAddon | undefined {
  if (loaded !== null) return loaded;
  const path = chosen === null ? tsAddonPath() : chosen;
  loaded = undefined;
  if (path && !existsSync(path) && process.env.SDT_TS_ADDON === path) {
    process.emitWarning(`SDT_TS_ADDON: ${path} does not exist; parsing through node-tree-sitter instead.`);
  }
  if (path && existsSync(path)) {
    try {
      loaded = createRequire(import.meta.url)(path) as TsSpansAddon;
    } catch (err) {
      process.emitWarning(
        `cannot load ${path} (${(err as Error).message}); parsing through node-tree-sitter instead. Rebuild it with \`npm run build:native\`.`,
      );
    }
  }
  return loaded;
}

/**
 * The tokenizer's encoder on UTF-8 bytes through the addon, for the data build; undefined without the
 * addon or for a tokenizer it cannot mirror (see BpeTokenizer.nativeTables). The result is undefined for
 * texts the addon leaves to JS (characters outside the BMP, pieces over 1 KB).
 */
export function nativeEncoder(
  tokenizer: Tokenizer,
): ((utf8: Uint8Array) => Encoding | undefined) | undefined {
  const t = tokenizer instanceof BpeTokenizer ? tokenizer.nativeTables() : undefined;
  return t && nativeEncoderFromTables(t);
}

/** nativeEncoder from the tables themselves (a cached copy of them: see bpe-tables-cache.ts). */
export function nativeEncoderFromTables(
  t: NativeBpeTables,
): ((utf8: Uint8Array) => Encoding | undefined) | undefined {
  const addon = tsAddon();
  if (!addon) return undefined;
  const handle = addon.bpeCreate(
    t.byteId,
    t.tokenLength,
    t.lefts,
    t.rights,
    t.ranks,
    t.mergedId,
    t.classFlags,
  );
  return (utf8) => {
    const r = addon.bpeEncode(handle, utf8);
    return r && { ids: r[0], byteOffsets: r[1] };
  };
}
