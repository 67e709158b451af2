import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempPathFor } from '../../common/fs.ts';
import type { NativeBpeTables } from '../tokenizer/bpe-model.ts';

export type { NativeBpeTables };

const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/sdt/', import.meta.url));
const MAGIC = 'SDTBPE1\0';
const INT_TABLES = ['byteId', 'tokenLength', 'lefts', 'rights', 'ranks', 'mergedId'] as const;

/**
 * One file per tokenizer (by the sha256 of its tokenizer.json) and Unicode version (the class flags come
 * from the regex engine's Unicode tables). Every data worker used to parse tokenizer.json, build the
 * pair table and scan the BMP for class flags: ~50 ms of CPU each at start-up, on the path to the first
 * batch; reading this file takes ~1 ms.
 */
function cachePath(tokenizerHash: string): string {
  return join(CACHE_DIR, `bpe-${tokenizerHash.slice(0, 32)}-unicode${process.versions.unicode ?? 'x'}.bin`);
}

/** The cached tables, or undefined when there are none (or the file is damaged). */
export function readBpeTablesCache(tokenizerHash: string): NativeBpeTables | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(cachePath(tokenizerHash));
  } catch {
    return undefined;
  }
  if (buf.length < 8 + 7 * 4 || buf.toString('latin1', 0, 8) !== MAGIC) return undefined;
  let at = 8;
  const take = (bytesPerItem: number): Uint8Array | undefined => {
    if (at + 4 > buf.length) return undefined;
    const n = buf.readUInt32LE(at);
    at += 4;
    if (at + n * bytesPerItem > buf.length) return undefined;
    // A copy: typed arrays of Int32 need 4-byte alignment, and the file's buffer may come pooled.
    const out = new Uint8Array(buf.subarray(at, at + n * bytesPerItem));
    at += n * bytesPerItem;
    return out;
  };
  const ints: Int32Array[] = [];
  for (let i = 0; i < INT_TABLES.length; i++) {
    const bytes = take(4);
    if (!bytes) return undefined;
    ints.push(new Int32Array(bytes.buffer, 0, bytes.length / 4));
  }
  const classFlags = take(1);
  if (!classFlags || at !== buf.length) return undefined;
  const [byteId, tokenLength, lefts, rights, ranks, mergedId] = ints;
  return { byteId, tokenLength, lefts, rights, ranks, mergedId, classFlags };
}

/** Store the tables for later builds; best effort (a read-only checkout just does without). */
export function writeBpeTablesCache(tokenizerHash: string, t: NativeBpeTables): void {
  const parts: Uint8Array[] = [Buffer.from(MAGIC, 'latin1')];
  const add = (a: Int32Array | Uint8Array): void => {
    const n = Buffer.alloc(4);
    n.writeUInt32LE(a.length);
    parts.push(n, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  };
  for (const k of INT_TABLES) add(t[k]);
  add(t.classFlags);
  const path = cachePath(tokenizerHash);
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = tempPathFor(path);
    writeFileSync(tmp, Buffer.concat(parts));
    renameSync(tmp, path);
  } catch {
    // No cache: the next build parses the tokenizer again.
  }
}
