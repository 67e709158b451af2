import { createHash } from 'node:crypto';
import { type BpeModelData, BpeTokenizer } from './bpe-model.ts';
import { bytesToTokenString, tokenStringToBytes } from './bytelevel.ts';
import { TokenizerFormatError } from './format-error.ts';
import { SPECIAL_TOKENS, type SpecialIds } from './types.ts';

/** What a tokenizer.json holds for sdt: special tokens first, then byte tokens and merges. */
export interface TokenizerFileContent {
  pattern: string;
  specials: readonly string[];
  /** Non-special tokens in id order, starting at id specials.length. */
  tokens: Uint8Array[];
  /** [left id, right id] in rank order. */
  merges: Array<[number, number]>;
}

const q = (s: string): string => JSON.stringify(s);

/**
 * Serialize to the Hugging Face tokenizer.json layout. Written by hand rather than JSON.stringify of an
 * object, so the vocabulary stays in id order (JS objects would hoist integer-like keys such as "1") and
 * the bytes are a pure function of the content.
 */
export function serializeTokenizerJson(c: TokenizerFileContent): string {
  const names: string[] = [...c.specials, ...c.tokens.map(bytesToTokenString)];
  const added = c.specials.map(
    (content, id) =>
      `    {"id": ${id}, "content": ${q(content)}, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}`,
  );
  const vocab = names.map((name, id) => `      ${q(name)}: ${id}`);
  const merges = c.merges.map(([l, r]) => `      ${q(`${names[l]} ${names[r]}`)}`);
  return [
    '{',
    '  "version": "1.0",',
    '  "truncation": null,',
    '  "padding": null,',
    '  "added_tokens": [',
    added.join(',\n'),
    '  ],',
    '  "normalizer": null,',
    '  "pre_tokenizer": {',
    '    "type": "Sequence",',
    '    "pretokenizers": [',
    `      {"type": "Split", "pattern": {"Regex": ${q(c.pattern)}}, "behavior": "Isolated", "invert": false},`,
    '      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}',
    '    ]',
    '  },',
    '  "post_processor": null,',
    '  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},',
    '  "model": {',
    '    "type": "BPE",',
    '    "dropout": null,',
    '    "unk_token": null,',
    '    "continuing_subword_prefix": null,',
    '    "end_of_word_suffix": null,',
    '    "fuse_unk": false,',
    '    "byte_fallback": false,',
    '    "ignore_merges": false,',
    '    "vocab": {',
    vocab.join(',\n'),
    '    },',
    '    "merges": [',
    merges.join(',\n'),
    '    ]',
    '  }',
    '}',
    '',
  ].join('\n');
}

export const sha256 = (content: string | Uint8Array): string =>
  createHash('sha256').update(content).digest('hex');

export { TokenizerFormatError };

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function findSplitPattern(pre: unknown): string {
  const parts =
    isObj(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? pre.pretokenizers : [pre];
  let pattern: string | undefined;
  let byteLevel = false;
  for (const p of parts) {
    if (!isObj(p)) continue;
    if (p.type === 'Split') {
      const pat = p.pattern;
      if (!isObj(pat) || typeof pat.Regex !== 'string')
        throw new TokenizerFormatError('Split pre-tokenizer needs a "Regex" pattern');
      if (p.invert === true || (p.behavior !== 'Isolated' && p.behavior !== 'isolated')) {
        throw new TokenizerFormatError(
          'only a Split pre-tokenizer with behavior "Isolated" and invert false is supported',
        );
      }
      pattern = pat.Regex;
    } else if (p.type === 'ByteLevel') {
      if (p.use_regex !== false || p.add_prefix_space === true) {
        throw new TokenizerFormatError(
          'the ByteLevel pre-tokenizer must have use_regex false and add_prefix_space false',
        );
      }
      byteLevel = true;
    } else {
      throw new TokenizerFormatError(`unsupported pre-tokenizer ${JSON.stringify(p.type)}`);
    }
  }
  if (pattern === undefined || !byteLevel) {
    throw new TokenizerFormatError('expected a Sequence of a Split (regex) and a ByteLevel pre-tokenizer');
  }
  return pattern;
}

/** Parse tokenizer.json text into model data; `hash` is the sha256 of the text. */
export function parseTokenizerJson(text: string): BpeModelData {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new TokenizerFormatError(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(root) || !isObj(root.model)) throw new TokenizerFormatError('no "model" object');
  const model = root.model;
  if (model.type !== 'BPE')
    throw new TokenizerFormatError(`model type is ${JSON.stringify(model.type)}, expected "BPE"`);
  if (root.normalizer !== null && root.normalizer !== undefined) {
    throw new TokenizerFormatError('normalizers are not supported (byte-level BPE must see the raw text)');
  }
  const pattern = findSplitPattern(root.pre_tokenizer);
  try {
    new RegExp(pattern, 'gu');
  } catch (err) {
    throw new TokenizerFormatError(
      `the split pattern does not compile as a JavaScript regex (${(err as Error).message})`,
    );
  }
  if (!isObj(model.vocab)) throw new TokenizerFormatError('model.vocab is not an object');
  if (!Array.isArray(model.merges)) throw new TokenizerFormatError('model.merges is not an array');

  const added = new Map<number, string>();
  for (const a of Array.isArray(root.added_tokens) ? root.added_tokens : []) {
    if (isObj(a) && typeof a.id === 'number' && typeof a.content === 'string') added.set(a.id, a.content);
  }
  const idOf = new Map<string, number>();
  let maxId = -1;
  for (const [name, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new TokenizerFormatError(
        `vocab entry ${JSON.stringify(name)} has id ${JSON.stringify(id)}, expected an integer >= 0`,
      );
    }
    idOf.set(name, id);
    maxId = Math.max(maxId, id);
  }
  for (const [id, content] of added) {
    idOf.set(content, id);
    maxId = Math.max(maxId, id);
  }
  const utf8 = new TextEncoder();
  const tokenBytes: Uint8Array[] = new Array(maxId + 1);
  for (const [name, id] of idOf) {
    if (added.get(id) === name) {
      tokenBytes[id] = utf8.encode(name);
      continue;
    }
    const bytes = tokenStringToBytes(name);
    if (!bytes)
      throw new TokenizerFormatError(`vocab entry ${JSON.stringify(name)} (id ${id}) is not byte-level text`);
    tokenBytes[id] = bytes;
  }
  for (let id = 0; id <= maxId; id++) {
    if (!tokenBytes[id])
      throw new TokenizerFormatError(`no token has id ${id}; ids must be contiguous from 0`);
  }

  const merges: Array<[number, number, number]> = [];
  model.merges.forEach((m: unknown, rank: number) => {
    let pair: [string, string] | undefined;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp > 0 && m.indexOf(' ', sp + 1) < 0) pair = [m.slice(0, sp), m.slice(sp + 1)];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      pair = [m[0], m[1]];
    }
    if (!pair)
      throw new TokenizerFormatError(
        `merge ${rank} (${JSON.stringify(m)}) is not "left right" or [left, right]`,
      );
    const l = idOf.get(pair[0]);
    const r = idOf.get(pair[1]);
    const merged = idOf.get(pair[0] + pair[1]);
    if (l === undefined || r === undefined || merged === undefined) {
      throw new TokenizerFormatError(
        `merge ${rank} (${JSON.stringify(m)}) uses or makes a token missing from the vocab`,
      );
    }
    merges.push([l, r, merged]);
  });

  const specialId = (content: string): number => {
    const id = idOf.get(content);
    if (id === undefined || added.get(id) !== content) {
      throw new TokenizerFormatError(`special token ${content} is missing from added_tokens`);
    }
    return id;
  };
  const [pad, bos, eos, mask, del, fimPrefix, fimMiddle, fimSuffix] = SPECIAL_TOKENS.map(specialId);
  const special: SpecialIds = { pad, bos, eos, mask, del, fimPrefix, fimMiddle, fimSuffix };
  return { pattern, tokenBytes, merges, special, specialIdList: [...added.keys()].sort((a, b) => a - b) };
}

/** A tokenizer from tokenizer.json text; `hash` defaults to the sha256 of its UTF-8 bytes. */
export function tokenizerFromJson(text: string, hash = sha256(text)): BpeTokenizer {
  return new BpeTokenizer(parseTokenizerJson(text), hash);
}
