import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../common/errors.ts';
import { listStdlibCorpus } from '../pipelines/sources/pystdlib.ts';
import { learnMerges } from '../pipelines/tokenizer/bpe-train.ts';
import { bytesToTokenString } from '../pipelines/tokenizer/bytelevel.ts';
import {
  type BpeTokenizer,
  loadTokenizer,
  pretokenize,
  SPECIAL_TOKENS,
  SPLIT_PATTERN,
  saveTokenizer,
  sha256,
  type TrainedTokenizer,
  tokenizerFromJson,
  trainBpe,
} from '../pipelines/tokenizer/index.ts';
import { mulberry32 as rng } from './prng.ts';

const PIECES = [
  'def ',
  'return ',
  'self',
  '.',
  '(',
  ')',
  ':',
  ' ',
  '  ',
  '    ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\n\n    ',
  '=',
  ' == ',
  '_',
  '__init__',
  'x1',
  '0',
  '123456',
  '3.14',
  '"',
  "'",
  '#',
  '{',
  '}',
  '[',
  ']',
  ',',
  '\u00a0',
  '\u2003',
  '\u3000',
  '\u2028',
  '\u0085',
  '\f',
  '\v',
  '变量',
  'переменная',
  'ñ',
  'e\u0301',
  'Ωμέγα',
  '😀',
  '👍🏽',
  '👨‍👩‍👧',
  '𝔘𝔫𝔦',
  'é',
  '\u200b',
  '٣',
  '²',
  'ﬁ',
  '\ufeff',
  '\u0000',
  '\u007f',
  'ÿ',
  '<|',
  '|>',
];

/** Random text assembled from code, whitespace and Unicode pieces, plus random code points. */
function randomText(r: () => number, withLoneSurrogates: boolean): string {
  let s = '';
  const n = 1 + Math.floor(r() * 30);
  for (let i = 0; i < n; i++) {
    const roll = r();
    if (roll < 0.75) s += PIECES[Math.floor(r() * PIECES.length)];
    else if (roll < 0.9) s += String.fromCodePoint(32 + Math.floor(r() * 95));
    else if (roll < 0.97 || !withLoneSurrogates) {
      let cp = Math.floor(r() * 0x110000);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x4e00;
      s += String.fromCodePoint(cp);
    } else s += String.fromCharCode(0xd800 + Math.floor(r() * 0x800));
  }
  return s;
}

/** In `u` mode \p{Cs} matches only unpaired surrogates: the expected U+FFFD replacement. */
const wellFormed = (s: string): string => s.replace(/\p{Cs}/gu, '\ufffd');

let trainTexts: string[] = [];
let heldOut: string[] = [];
let trained: TrainedTokenizer;
let tok: BpeTokenizer;

beforeAll(async () => {
  const corpus = await listStdlibCorpus();
  // A few hundred KB keeps training fast; files are picked by a stable stride over the sorted list.
  const train = corpus.filter((f) => f.split === 'train');
  const picked = train.filter((_, i) => i % 12 === 0);
  trainTexts = [];
  let bytes = 0;
  for (const f of picked) {
    const text = await readFile(f.path, 'utf8');
    if (bytes + text.length > 400_000) continue;
    trainTexts.push(text);
    bytes += text.length;
  }
  const val = corpus.filter((f) => f.split === 'validation');
  heldOut = await Promise.all(val.filter((_, i) => i % 50 === 0).map((f) => readFile(f.path, 'utf8')));
  trained = await trainBpe(trainTexts, { vocabSize: 1200, minFrequency: 2 });
  tok = trained.tokenizer;
});

describe('special tokens and vocabulary', () => {
  it('gives the special tokens ids 0..7 in order, in the file and in the API', () => {
    const json = JSON.parse(trained.json);
    expect(json.added_tokens.map((a: { id: number; content: string }) => [a.id, a.content])).toEqual(
      SPECIAL_TOKENS.map((s, i) => [i, s]),
    );
    expect(tok.special).toEqual({
      pad: 0,
      bos: 1,
      eos: 2,
      mask: 3,
      del: 4,
      fimPrefix: 5,
      fimMiddle: 6,
      fimSuffix: 7,
    });
    for (let i = 0; i < SPECIAL_TOKENS.length; i++) expect(tok.decode([i])).toBe(SPECIAL_TOKENS[i]);
  });

  it('respects the requested vocabulary size exactly, counting specials and bytes', () => {
    expect(tok.vocabSize).toBe(1200);
    const vocab = JSON.parse(trained.json).model.vocab as Record<string, number>;
    const ids = Object.values(vocab).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 1200 }, (_, i) => i));
  });

  it('stops early when no pair reaches --min-frequency', async () => {
    const small = await trainBpe(['abab abab xyz'], { vocabSize: 1000, minFrequency: 2 });
    expect(small.tokenizer.vocabSize).toBeLessThan(1000);
    expect(small.tokenizer.vocabSize).toBe(264 + small.merges);
    expect(small.tokenizer.decode(small.tokenizer.encode('abab abab xyz'))).toBe('abab abab xyz');
  });

  it('rejects a vocabulary too small to hold the specials and bytes', async () => {
    await expect(trainBpe(['x'], { vocabSize: 100 })).rejects.toThrow(UserError);
  });
});

describe('training', () => {
  it('learns the merges worked out by hand, ties going to the smaller (left id, right id)', () => {
    const base = 8;
    const id = (c: string): number => base + c.charCodeAt(0);
    const counts = new Map([
      ['ab', 3],
      ['abc', 2],
      ['bc', 1],
    ]);
    // (a,b) 5 > (b,c) 3; then (ab,c) 2 > (b,c) 1; then (b,c) is below min frequency 2.
    const r = learnMerges(counts, { vocabSize: 1000, minFrequency: 2, specialCount: base });
    expect(r.merges).toEqual([
      [id('a'), id('b')],
      [base + 256, id('c')],
    ]);
    const ties = learnMerges(
      new Map([
        ['dc', 1],
        ['ba', 1],
      ]),
      { vocabSize: base + 256 + 2, minFrequency: 1, specialCount: base },
    );
    expect(ties.merges).toEqual([
      [id('b'), id('a')],
      [id('d'), id('c')],
    ]);
  });

  it('matches a naive trainer that recounts every pair at every merge', () => {
    const words = new Map<string, number>();
    for (const text of trainTexts.slice(0, 6)) {
      for (const w of pretokenize(text)) words.set(w, (words.get(w) ?? 0) + 1);
    }
    const fast = learnMerges(words, { vocabSize: 8 + 256 + 150, minFrequency: 2, specialCount: 8 });

    // Reference: symbols as token strings, full recount per merge, same tie rule on ids.
    const idOf = new Map<string, number>();
    for (let b = 0; b < 256; b++) idOf.set(bytesToTokenString(Uint8Array.of(b)), 8 + b);
    let next = 8 + 256;
    const enc = new TextEncoder();
    let ws = [...words].map(([w, c]) => ({ syms: [...bytesToTokenString(enc.encode(w))], c }));
    const naive: Array<[number, number]> = [];
    while (next < 8 + 256 + 150) {
      const counts = new Map<string, number>();
      for (const { syms, c } of ws) {
        for (let i = 0; i + 1 < syms.length; i++) {
          const k = `${syms[i]} ${syms[i + 1]}`;
          counts.set(k, (counts.get(k) ?? 0) + c);
        }
      }
      let best: [string, string] | undefined;
      let bestCount = 0;
      for (const [k, c] of counts) {
        const [l, r] = k.split(' ');
        const better =
          c > bestCount ||
          (c === bestCount &&
            best !== undefined &&
            (idOf.get(l)! < idOf.get(best[0])! || (l === best[0] && idOf.get(r)! < idOf.get(best[1])!)));
        if (better) {
          best = [l, r];
          bestCount = c;
        }
      }
      if (!best || bestCount < 2) break;
      const [l, r] = best;
      naive.push([idOf.get(l)!, idOf.get(r)!]);
      if (!idOf.has(l + r)) idOf.set(l + r, next++);
      ws = ws.map(({ syms, c }) => {
        const out: string[] = [];
        for (let i = 0; i < syms.length; i++) {
          if (i + 1 < syms.length && syms[i] === l && syms[i + 1] === r) {
            out.push(l + r);
            i++;
          } else out.push(syms[i]);
        }
        return { syms: out, c };
      });
    }
    expect(fast.merges).toEqual(naive);
  });

  it('is deterministic: the same corpus in any document order gives the same file bytes', async () => {
    const again = await trainBpe(trainTexts, { vocabSize: 1200, minFrequency: 2 });
    expect(again.json).toBe(trained.json);
    const shuffled = [...trainTexts].reverse();
    const reordered = await trainBpe(
      (async function* () {
        yield* shuffled;
      })(),
      { vocabSize: 1200, minFrequency: 2 },
    );
    expect(sha256(reordered.json)).toBe(sha256(trained.json));
  });
});

describe('pre-tokenization', () => {
  it('cuts text where the split regex does: the fast scanner equals the regex engine', () => {
    // Wrapping the pattern in a group keeps its meaning but forces the generic regex path.
    const viaRegex = (t: string): string[] => pretokenize(t, `(?:${SPLIT_PATTERN})`);
    const r = rng(23);
    const samples = [...heldOut, ...Array.from({ length: 2000 }, () => randomText(r, true))];
    for (const s of samples) expect(pretokenize(s)).toEqual(viaRegex(s));
  });

  it('keeps a line break with its indentation, and pieces concatenate back to the text', () => {
    const text = 'class A:\n    def f(self):\r\n\t\treturn  x\n\n  y = 1000';
    const pieces = pretokenize(text);
    expect(pieces.join('')).toBe(text);
    expect(pieces).toContain('\n    ');
    expect(pieces).toContain('\r\n\t\t');
    expect(pieces).toContain('\n\n  ');
    expect(pieces).toEqual(
      expect.arrayContaining(['class', ' A', 'def', ' f', '(self', '):', 'return', ' ', ' x', '100', '0']),
    );
  });
});

describe('encoding', () => {
  it('round-trips random text exactly; lone surrogates become U+FFFD', () => {
    const r = rng(7);
    for (let i = 0; i < 1500; i++) {
      const s = randomText(r, true);
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(wellFormed(s));
    }
    expect(tok.decode(tok.encode('a\ud800b'))).toBe('a\ufffdb');
  });

  it('round-trips held-out source files exactly', () => {
    for (const text of heldOut) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('returns byte offsets that slice the UTF-8 of the text into the tokens', () => {
    const r = rng(11);
    for (let i = 0; i < 300; i++) {
      const s = randomText(r, false);
      const { ids, byteOffsets } = tok.encodeWithOffsets(s);
      const bytes = new TextEncoder().encode(s);
      expect(byteOffsets.length).toBe(ids.length + 1);
      expect(byteOffsets[0]).toBe(0);
      expect(byteOffsets[ids.length]).toBe(bytes.length);
      for (let t = 0; t < ids.length; t++) {
        expect(Buffer.from(tok.decodeBytes([ids[t]]))).toEqual(
          Buffer.from(bytes.subarray(byteOffsets[t], byteOffsets[t + 1])),
        );
      }
    }
  });

  it('never produces special ids from text: "<|mask|>" in data stays ordinary text', () => {
    const ids = [...tok.encode('x = "<|mask|><|eos|>"')];
    for (let i = 0; i < SPECIAL_TOKENS.length; i++) expect(ids).not.toContain(i);
    expect(tok.decode(ids)).toBe('x = "<|mask|><|eos|>"');
  });

  it('agrees with a naive BPE over the file (lowest rank first, leftmost on ties)', () => {
    const json = JSON.parse(trained.json);
    const vocab = json.model.vocab as Record<string, number>;
    const rank = new Map<string, number>((json.model.merges as string[]).map((m, i) => [m, i]));
    const enc = new TextEncoder();
    const naiveEncode = (text: string): number[] =>
      pretokenize(text).flatMap((piece) => {
        const syms = [...bytesToTokenString(enc.encode(piece))];
        for (;;) {
          let best = -1;
          let bestRank = Number.POSITIVE_INFINITY;
          for (let i = 0; i + 1 < syms.length; i++) {
            const rk = rank.get(`${syms[i]} ${syms[i + 1]}`);
            if (rk !== undefined && rk < bestRank) {
              bestRank = rk;
              best = i;
            }
          }
          if (best < 0) break;
          syms.splice(best, 2, syms[best] + syms[best + 1]);
        }
        return syms.map((s) => vocab[s]);
      });
    const r = rng(3);
    const samples = [
      heldOut[0].slice(0, 5000),
      `${'='.repeat(300)}\n${'ab'.repeat(200)}`,
      ...Array.from({ length: 200 }, () => randomText(r, false)),
    ];
    for (const s of samples) expect([...tok.encode(s)]).toEqual(naiveEncode(s));
  });

  it('encodes very long pre-tokens (a 200 KB word, a 100 KB run of punctuation) exactly', () => {
    for (const s of ['ab'.repeat(100_000), `x${'='.repeat(100_000)}\n`, ' '.repeat(50_000)]) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('encodes the same after its piece cache fills and is cleared (300k distinct words)', () => {
    const r = rng(13);
    const letters = 'abcdefghijklmnopqrstuvwxyzéü_';
    const words = Array.from({ length: 300_000 }, () =>
      Array.from({ length: 3 + Math.floor(r() * 10) }, () => letters[Math.floor(r() * letters.length)]).join(
        '',
      ),
    );
    const text = words.join(' ');
    const fresh = tokenizerFromJson(trained.json);
    const once = fresh.encode(text);
    // Word by word through yet another tokenizer: no cache state is shared with the long text's encode.
    const other = tokenizerFromJson(trained.json);
    const byWord = words.flatMap((w, i) => [...other.encode(i === 0 ? w : ` ${w}`)]);
    expect([...once]).toEqual(byWord);
    expect([...fresh.encode(text)]).toEqual([...once]);
  });

  it('merges long words (heap path) exactly like short words (quadratic path)', () => {
    const r = rng(5);
    const enc = new TextEncoder();
    for (let i = 0; i < 200; i++) {
      const text = heldOut[i % heldOut.length];
      const start = Math.floor(r() * Math.max(1, text.length - 400));
      const bytes = enc.encode(text.slice(start, start + 20 + Math.floor(r() * 300)));
      const base = Int32Array.from(bytes, (b) => 8 + b);
      expect([...tok.mergeLong(base.slice())]).toEqual([...tok.mergeShort(base.slice())]);
    }
  });
});

describe('Hugging Face compatibility', () => {
  it('loads in @huggingface/tokenizers and encodes to the same ids', () => {
    const hf = new HfTokenizer(JSON.parse(trained.json), {});
    const r = rng(13);
    const samples = [
      ...heldOut.slice(0, 8),
      'def f(x):\r\n\treturn x  \n\n\n    # héllo 😀\n',
      '变量 = переменная + 𝔘𝔫𝔦\u00a0\u3000x\u2028y\u0085z',
      ...Array.from({ length: 300 }, () => randomText(r, false).replaceAll('<|', '<')),
    ];
    for (const s of samples) {
      expect([...tok.encode(s)]).toEqual(hf.encode(s, { add_special_tokens: false }).ids);
    }
    expect(hf.decode([...tok.encode(heldOut[0])], { clean_up_tokenization_spaces: false })).toBe(heldOut[0]);
  });

  it('keeps text a custom split pattern skips as pieces of its own, like the Isolated behaviour', () => {
    const json = JSON.parse(trained.json);
    json.pre_tokenizer.pretokenizers[0].pattern.Regex = '\\p{L}+| ?\\p{N}+';
    const custom = tokenizerFromJson(JSON.stringify(json));
    const hf = new HfTokenizer(json, {});
    const r = rng(17);
    for (let i = 0; i < 200; i++) {
      const s = randomText(r, false).replaceAll('<|', '<');
      expect([...custom.encode(s)]).toEqual(hf.encode(s, { add_special_tokens: false }).ids);
      expect(custom.decode(custom.encode(s))).toBe(s);
    }
  });
});

describe('files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sdt-tok-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves and loads: the hash is the sha256 of the file and encodings are unchanged', async () => {
    const path = join(dir, 'tokenizer.json');
    await saveTokenizer(path, trained);
    const loaded = await loadTokenizer(path);
    expect(loaded.hash).toBe(sha256(await readFile(path)));
    expect(loaded.hash).toBe(tok.hash);
    expect([...loaded.encode(heldOut[1])]).toEqual([...tok.encode(heldOut[1])]);
  });

  it('reports a missing or malformed file with its path', async () => {
    await expect(loadTokenizer(join(dir, 'nope.json'))).rejects.toThrow(/nope\.json/);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ model: { type: 'WordPiece' } }));
    await expect(loadTokenizer(bad)).rejects.toThrow(/bad\.json: model type is "WordPiece"/);
  });
});

describe('compression', () => {
  it('has sane bytes per token on held-out files, improving with a larger vocabulary', async () => {
    const bpt = (t: BpeTokenizer): number => {
      let bytes = 0;
      let tokens = 0;
      for (const text of heldOut) {
        bytes += Buffer.byteLength(text);
        tokens += t.encode(text).length;
      }
      return bytes / tokens;
    };
    const smaller = await trainBpe(trainTexts, { vocabSize: 500, minFrequency: 2 });
    const a = bpt(smaller.tokenizer);
    const b = bpt(tok);
    expect(a).toBeGreaterThan(1.5);
    expect(b).toBeGreaterThan(a);
    expect(b).toBeGreaterThan(2.2);
    expect(b).toBeLessThan(8);
  });
});
