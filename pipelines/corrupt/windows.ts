/**
 * Cutting dataset rows into fixed-length training windows of L tokens. A row becomes the document
 * <|bos|> tokens <|eos|>; a document longer than L is split into L-token pieces; pieces are packed
 * greedily (a piece that does not fit in what is left of the current window starts a new one, so short
 * documents are never split), each piece gets its own segment id (1, 2, ...), and the rest is <|pad|>
 * with segment 0. Spans follow the tokens: shifted by the BOS and the piece's place in the window,
 * clipped to the piece, and dropped when nothing of them is left.
 */
import type { Span } from '../../schemas/dataset.ts';
import type { CorruptSpecials, Window, WindowPiece } from './types.ts';

export interface WindowOptions {
  seqLen: number;
  specials: Pick<CorruptSpecials, 'pad' | 'bos' | 'eos'>;
  /** Pack several short rows into one window (default true); false gives one row per window. */
  pack?: boolean;
}

export interface WindowSource {
  id: string;
  tokens: Int32Array;
  spans: readonly Span[];
}

export class WindowPacker {
  private tokens: Int32Array;
  private segment: Int32Array;
  private used = 0;
  private spans: Span[] = [];
  private pieces: WindowPiece[] = [];
  private readonly L: number;

  constructor(private readonly opts: WindowOptions) {
    if (!(Number.isInteger(opts.seqLen) && opts.seqLen >= 2)) {
      throw new Error(`windows: seqLen must be an integer >= 2, got ${opts.seqLen}`);
    }
    this.L = opts.seqLen;
    this.tokens = new Int32Array(this.L).fill(opts.specials.pad);
    this.segment = new Int32Array(this.L);
  }

  /** Add a row; returns the windows it completed. */
  push(row: WindowSource): Window[] {
    const { bos, eos } = this.opts.specials;
    const n = row.tokens.length;
    const docLen = n + 2;
    // doc[p]: p = 0 is BOS, 1..n the row tokens, n+1 the EOS.
    const docAt = (p: number): number => (p === 0 ? bos : p === n + 1 ? eos : row.tokens[p - 1]);
    const out: Window[] = [];
    const pack = this.opts.pack ?? true;
    for (let p0 = 0; p0 < docLen; p0 += this.L) {
      const p1 = Math.min(docLen, p0 + this.L);
      const len = p1 - p0;
      if (this.used > 0 && (!pack || this.used + len > this.L)) out.push(this.emit());
      const w0 = this.used;
      const seg = this.pieces.length + 1;
      for (let p = p0; p < p1; p++) {
        this.tokens[w0 + p - p0] = docAt(p);
        this.segment[w0 + p - p0] = seg;
      }
      for (const s of row.spans) {
        const a = Math.max(s.start + 1, p0);
        const b = Math.min(s.end + 1, p1);
        if (b > a) this.spans.push({ kind: s.kind, start: w0 + a - p0, end: w0 + b - p0 });
      }
      this.pieces.push({
        rowId: row.id,
        segment: seg,
        start: w0,
        end: w0 + len,
        rowOffset: Math.max(0, p0 - 1),
      });
      this.used += len;
      if (this.used === this.L || !pack) out.push(this.emit());
    }
    return out;
  }

  /** The last, partly filled window, if any. */
  flush(): Window[] {
    return this.used > 0 ? [this.emit()] : [];
  }

  private emit(): Window {
    const w: Window = {
      tokens: this.tokens,
      segment: this.segment,
      length: this.used,
      spans: this.spans,
      pieces: this.pieces,
    };
    this.tokens = new Int32Array(this.L).fill(this.opts.specials.pad);
    this.segment = new Int32Array(this.L);
    this.used = 0;
    this.spans = [];
    this.pieces = [];
    return w;
  }
}

/** All windows of a list of rows (convenience over WindowPacker). */
export function cutWindows(rows: Iterable<WindowSource>, opts: WindowOptions): Window[] {
  const packer = new WindowPacker(opts);
  const out: Window[] = [];
  for (const r of rows) out.push(...packer.push(r));
  out.push(...packer.flush());
  return out;
}
