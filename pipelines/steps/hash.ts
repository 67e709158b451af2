import { createHash, hash } from 'node:crypto';

export const sha256Hex = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

/** A 32-bit hash of a string that is the same on every machine and run: for splits and --shard i/N. */
export function stableHash32(s: string): number {
  // The one-shot digest: a Hash object per record cost the build's main thread ~7 ms per 8 MB.
  return hash('sha256', s, 'buffer').readUInt32BE(0);
}

/** MurmurHash3's finaliser: a fast bijective mix of 32 bits. */
export function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** FNV-1a over UTF-16 code units of s[start, end). */
export function fnv1a(s: string, start = 0, end = s.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
