import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../../common/native.ts';

/**
 * native/node/ts_spans.c, built by `npm run build:native` into native/build/sdt_ts_spans.node: tree-sitter
 * parse and span walk in one call, on UTF-8 bytes. node-tree-sitter's cursor costs an N-API call per node
 * property or move, which made the walk cost as much as half the parse.
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
