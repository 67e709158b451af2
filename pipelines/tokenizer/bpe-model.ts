import { TokenizerFormatError } from './format-error.ts';
import { PairRanks } from './pair-ranks.ts';
import { type PieceEnd, pieceSplitter, SPLIT_PATTERN } from './pretokenize.ts';
import { bmpFlags } from './split-scanner.ts';
import type { Encoding, SpecialIds, Tokenizer } from './types.ts';

/** Everything needed to encode and decode, independent of the file format. */
export interface BpeModelData {
  /** The pre-tokenizer split regex (Oniguruma syntax restricted to what JavaScript reads alike). */
  pattern: string;
  /** Bytes of each token by id; special tokens hold the UTF-8 of their literal text. */
  tokenBytes: Uint8Array[];
  /** merges[rank] = [left id, right id, merged id]. */
  merges: Array<[number, number, number]>;
  special: SpecialIds;
  /** Ids that are special tokens (never produced by encode). */
  specialIdList: number[];
}

/** Words up to this many bytes use the simple quadratic merge loop; longer ones use a heap. */
const SHORT_WORD = 48;
/** Pieces longer than this (in UTF-16 units) are not cached: they are rare and would bloat the cache. */
const MAX_CACHED_PIECE = 128;
const MAX_CACHE_ENTRIES = 200_000;
/** Open-addressing slots: a power of two, so the table stays under 40% full. */
const CACHE_SLOTS = 1 << 19;
/** UTF-16 units of cached pieces held at most (8 MB). */
const CACHE_UNITS = 1 << 22;

/**
 * Token ids of pre-tokens (pieces) seen before, looked up by the piece's range in the text: no substring
 * is made for a hit, which is what almost every piece of code is. Keys are copied into one pool of UTF-16
 * units rather than kept as substrings, which V8 makes as views that would keep whole files alive. Cleared
 * when full, so memory stays bounded.
 */
class PieceCache {
  /**
   * Per slot (hash, key start, key length), side by side so a probe reads one cache line; the key is
   * pool[start, start + length), and length 0 marks an empty slot.
   */
  private readonly slots = new Int32Array(3 * CACHE_SLOTS);
  private readonly values: (Int32Array | undefined)[] = new Array(CACHE_SLOTS).fill(undefined);
  private readonly pool = new Uint16Array(CACHE_UNITS);
  private poolUsed = 0;
  private size = 0;

  static hash(text: string, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return h ^ (h >>> 15);
  }

  get(text: string, start: number, end: number, hash: number): Int32Array | undefined {
    const mask = CACHE_SLOTS - 1;
    const len = end - start;
    const pool = this.pool;
    const slots = this.slots;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const keyLength = slots[3 * slot + 2];
      if (keyLength === 0) return undefined;
      if (slots[3 * slot] !== hash || keyLength !== len) continue;
      const k = slots[3 * slot + 1] - start;
      let i = start;
      while (i < end && pool[k + i] === text.charCodeAt(i)) i++;
      if (i === end) return this.values[slot];
    }
  }

  /** Remember the ids of text[start, end) (not empty). */
  set(text: string, start: number, end: number, hash: number, ids: Int32Array): void {
    const len = end - start;
    if (this.size >= MAX_CACHE_ENTRIES || this.poolUsed + len > CACHE_UNITS) {
      this.slots.fill(0);
      this.values.fill(undefined);
      this.size = 0;
      this.poolUsed = 0;
    }
    const mask = CACHE_SLOTS - 1;
    let slot = hash & mask;
    while (this.slots[3 * slot + 2] !== 0) slot = (slot + 1) & mask;
    const at = this.poolUsed;
    for (let i = 0; i < len; i++) this.pool[at + i] = text.charCodeAt(start + i);
    this.poolUsed += len;
    this.slots[3 * slot] = hash;
    this.slots[3 * slot + 1] = at;
    this.slots[3 * slot + 2] = len;
    this.values[slot] = ids;
    this.size++;
  }
}

/** What the data build's native encoder (native/node/bpe.c) is made from: BpeTokenizer.nativeTables(). */
export interface NativeBpeTables {
  byteId: Int32Array;
  tokenLength: Int32Array;
  lefts: Int32Array;
  rights: Int32Array;
  ranks: Int32Array;
  mergedId: Int32Array;
  classFlags: Uint8Array;
}

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialIds;
  private readonly tokenBytes: Uint8Array[];
  private readonly byteId = new Int32Array(256);
  private readonly rankOf: PairRanks;
  private readonly mergedId: Int32Array;
  private readonly pieceEnd: PieceEnd;
  /** Bytes per token id. */
  private readonly tokenLength: Int32Array;
  private cache: PieceCache | undefined;
  private readonly utf8 = new TextEncoder();
  private readonly utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(
    readonly data: BpeModelData,
    readonly hash: string,
  ) {
    this.vocabSize = data.tokenBytes.length;
    this.special = data.special;
    this.tokenBytes = data.tokenBytes;
    this.tokenLength = Int32Array.from(data.tokenBytes, (b) => b.length);
    this.pieceEnd = pieceSplitter(data.pattern);
    const specials = new Set(data.specialIdList);
    this.byteId.fill(-1);
    for (let id = 0; id < data.tokenBytes.length; id++) {
      const b = data.tokenBytes[id];
      if (b.length === 1 && !specials.has(id) && this.byteId[b[0]] === -1) this.byteId[b[0]] = id;
    }
    const missing = [...this.byteId.keys()].filter((b) => this.byteId[b] === -1);
    if (missing.length > 0) {
      throw new TokenizerFormatError(
        `the vocabulary lacks byte tokens for bytes ${missing.slice(0, 8).join(', ')}`,
      );
    }
    this.mergedId = Int32Array.from(data.merges, (m) => m[2]);
    this.rankOf = new PairRanks(data.merges.map(([l, r]) => [l, r] as const));
  }

  encode(text: string): Int32Array {
    // Code averages 3-4 bytes per token; the buffer doubles when a text needs more.
    let out = new Int32Array(16 + (text.length >> 2));
    let n = 0;
    // Made on first use: 18 MB that a tokenizer only used to decode does not need.
    this.cache ??= new PieceCache();
    const cache = this.cache;
    const pieceEnd = this.pieceEnd;
    // The loop is written out (no per-piece callback) because it is the hot path of dataset building.
    for (let start = 0; start < text.length; ) {
      const end = pieceEnd(text, start);
      let ids: Int32Array | undefined;
      if (end - start <= MAX_CACHED_PIECE) {
        const hash = PieceCache.hash(text, start, end);
        ids = cache.get(text, start, end, hash);
        if (ids === undefined) {
          ids = this.encodeWord(this.utf8.encode(text.slice(start, end)));
          cache.set(text, start, end, hash, ids);
        }
      } else {
        ids = this.encodeWord(this.utf8.encode(text.slice(start, end)));
      }
      start = end;
      const len = ids.length;
      if (n + len > out.length) {
        const grown = new Int32Array(Math.max(out.length * 2, n + len));
        grown.set(out.subarray(0, n));
        out = grown;
      }
      if (len <= 8) {
        for (let i = 0; i < len; i++) out[n + i] = ids[i];
      } else {
        out.set(ids, n);
      }
      n += len;
    }
    return out.slice(0, n);
  }

  /**
   * What the data build's native encoder (native/node/bpe.c) needs to encode exactly like this one;
   * undefined unless the split pattern is SPLIT_PATTERN, the only one that encoder scans.
   */
  nativeTables(): NativeBpeTables | undefined {
    if (this.data.pattern !== SPLIT_PATTERN) return undefined;
    return {
      byteId: this.byteId,
      tokenLength: this.tokenLength,
      ...this.rankOf.tables(),
      mergedId: this.mergedId,
      classFlags: bmpFlags(),
    };
  }

  encodeWithOffsets(text: string): Encoding {
    const ids = this.encode(text);
    const byteOffsets = new Int32Array(ids.length + 1);
    const tokenLength = this.tokenLength;
    let pos = 0;
    for (let i = 0; i < ids.length; i++) {
      byteOffsets[i] = pos;
      pos += tokenLength[ids[i]];
    }
    byteOffsets[ids.length] = pos;
    return { ids, byteOffsets };
  }

  /** Concatenated bytes of the tokens (the exact UTF-8 of the encoded text). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let total = 0;
    for (let i = 0; i < ids.length; i++) total += this.bytesOf(ids[i], i).length;
    const out = new Uint8Array(total);
    let pos = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.tokenBytes[ids[i]];
      out.set(b, pos);
      pos += b.length;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    return this.utf8Decoder.decode(this.decodeBytes(ids));
  }

  tokenText(id: number): string {
    return this.utf8Decoder.decode(this.bytesOf(id, 0));
  }

  /** The raw bytes of one token. */
  bytesOf(id: number, position = 0): Uint8Array {
    const b = Number.isInteger(id) ? this.tokenBytes[id] : undefined;
    if (b === undefined) {
      throw new RangeError(
        `token id ${id} at position ${position} is outside the vocabulary (0..${this.vocabSize - 1})`,
      );
    }
    return b;
  }

  /** BPE over one pre-token: repeatedly merge the lowest-rank adjacent pair, leftmost first. */
  encodeWord(bytes: Uint8Array): Int32Array {
    const syms = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = this.byteId[bytes[i]];
    return bytes.length <= SHORT_WORD ? this.mergeShort(syms) : this.mergeLong(syms);
  }

  /**
   * Quadratic in the word length in the worst case, but with two rank lookups per merge and a scan of a
   * small int array: the fastest for the short words that dominate code.
   */
  mergeShort(syms: Int32Array): Int32Array {
    let n = syms.length;
    if (n < 2) return syms;
    const rankOf = this.rankOf;
    const ranks = new Int32Array(n - 1);
    for (let i = 0; i + 1 < n; i++) ranks[i] = rankOf.get(syms[i], syms[i + 1]);
    for (;;) {
      let best = -1;
      let bestRank = 0x7fffffff;
      for (let i = 0; i + 1 < n; i++) {
        const r = ranks[i];
        if (r >= 0 && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      syms[best] = this.mergedId[bestRank];
      syms.copyWithin(best + 1, best + 2, n);
      ranks.copyWithin(best, best + 1, n - 1);
      n--;
      if (best > 0) ranks[best - 1] = rankOf.get(syms[best - 1], syms[best]);
      if (best + 1 < n) ranks[best] = rankOf.get(syms[best], syms[best + 1]);
    }
    return syms.slice(0, n);
  }

  /** O(n log n): a linked list of symbols and a heap of candidate merges ordered by (rank, position). */
  mergeLong(syms: Int32Array): Int32Array {
    const n = syms.length;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Heap entries pack (rank, position) in one number: rank < 2^21 and position < 2^32 keep it exact.
    const heap: number[] = [];
    const POS = 2 ** 32;
    const push = (v: number): void => {
      heap.push(v);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= v) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = v;
    };
    const pop = (): number => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        const size = heap.length;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= size) break;
          const c = l + 1 < size && heap[l + 1] < heap[l] ? l + 1 : l;
          if (heap[c] >= last) break;
          heap[i] = heap[c];
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const candidate = (i: number): void => {
      const j = next[i];
      if (j < 0) return;
      const r = this.rankOf.get(syms[i], syms[j]);
      if (r >= 0) push(r * POS + i);
    };
    for (let i = 0; i + 1 < n; i++) candidate(i);
    while (heap.length > 0) {
      const v = pop();
      const rank = Math.floor(v / POS);
      const i = v - rank * POS;
      const j = next[i];
      if (!alive[i] || j < 0 || this.rankOf.get(syms[i], syms[j]) !== rank) continue;
      syms[i] = this.mergedId[rank];
      alive[j] = 0;
      const k = next[j];
      next[i] = k;
      if (k >= 0) prev[k] = i;
      if (prev[i] >= 0) candidate(prev[i]);
      candidate(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(syms[i]);
    return Int32Array.from(out);
  }
}
