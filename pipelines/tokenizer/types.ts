/** Special tokens, in id order at the start of the vocabulary (docs/tokenizer.md). */
export const SPECIAL_TOKENS = [
  '<|pad|>',
  '<|bos|>',
  '<|eos|>',
  '<|mask|>',
  '<|del|>',
  '<|fim_prefix|>',
  '<|fim_middle|>',
  '<|fim_suffix|>',
] as const;

export interface SpecialIds {
  pad: number;
  bos: number;
  eos: number;
  mask: number;
  del: number;
  fimPrefix: number;
  fimMiddle: number;
  fimSuffix: number;
}

export interface Encoding {
  ids: Int32Array;
  /** UTF-8 byte offset where each token starts; offsets[ids.length] is the total byte length. */
  byteOffsets: Int32Array;
}

/** A loaded byte-level BPE tokenizer (tokenizer.json). Encoding never adds special tokens. */
export interface Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialIds;
  /** sha256 of the tokenizer.json file content. */
  readonly hash: string;
  encode(text: string): Int32Array;
  encodeWithOffsets(text: string): Encoding;
  /** Exact inverse of encode for any string; special tokens decode to their literal text. */
  decode(ids: ArrayLike<number>): string;
  /** The token's surface text (bytes decoded as UTF-8, lossy for partial characters). */
  tokenText(id: number): string;
}
