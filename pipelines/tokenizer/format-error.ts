/** A tokenizer.json that sdt cannot use; the message says what is wrong (loadTokenizer adds the path). */
export class TokenizerFormatError extends Error {
  override name = 'TokenizerFormatError';
}
