import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Parser from 'tree-sitter';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { grammarFor } from '../pipelines/steps/grammar.ts';
import { parseCode, parseCodeJs } from '../pipelines/steps/parse.ts';
import { nodesToSpanArrays, nodesToSpans, utf16ToUtf8Offsets } from '../pipelines/steps/spans.ts';
import { tsAddon } from '../pipelines/steps/ts-addon.ts';
import { loadTokenizer } from '../pipelines/tokenizer/index.ts';
import type { Tokenizer } from '../pipelines/tokenizer/types.ts';
import { SPAN_KINDS } from '../schemas/dataset.ts';
import { byteTokenizer, smallTokenizer, tempDir } from './data-helpers.ts';

const SOURCE = `# coding: utf-8
"""Modul für Grüße — 日本語 docstring 😀."""
naïve_größe = "héllo 😀 wörld"

def grüß(name, 数 = 3):
    if name:
        return f"Hallo {name} {'😀' * 数}"
    return [x ** 2 for x in range(数)]

class Café:
    def método(self, ü):
        return ü + 1
`;

/** Expected spans computed without the code under test: tree-sitter nodes via the SyntaxNode API, UTF-8
 * offsets via Buffer.byteLength of the prefix, token cover via a linear scan of token offsets. */
function expectedSpans(text: string, byteOffsets: Int32Array, nTokens: number): Set<string> {
  const g = grammarFor('python')!;
  const parser = new Parser();
  parser.setLanguage(g.language as Parser.Language);
  const out = new Set<string>();
  const visit = (n: Parser.SyntaxNode): void => {
    const kind = g.kindOf.get(n.type);
    if (kind !== undefined && n.isNamed && n.endIndex > n.startIndex) {
      const sb = Buffer.byteLength(text.slice(0, n.startIndex));
      const eb = sb + Buffer.byteLength(n.text);
      let start = 0;
      while (start + 1 < nTokens && byteOffsets[start + 1] <= sb) start++;
      let end = start + 1;
      while (end < nTokens && byteOffsets[end] < eb) end++;
      out.add(`${SPAN_KINDS[kind]}:${start}:${end}`);
    }
    for (const c of n.children) visit(c);
  };
  visit(parser.parse(text).rootNode);
  return out;
}

function spansOf(text: string, tok: Tokenizer) {
  const parsed = parseCode(text, 'python')!;
  expect(parsed.errors).toBe(0);
  const enc = tok.encodeWithOffsets(text);
  return { enc, spans: nodesToSpans(parsed.nodes, enc.byteOffsets, enc.ids.length) };
}

describe('UTF-16 index to UTF-8 offset', () => {
  it('agrees with Buffer.byteLength of every prefix', () => {
    const t = 'aé€😀b\u{10348}z';
    const map = utf16ToUtf8Offsets(t);
    for (let i = 0; i <= t.length; i++) {
      // Inside a surrogate pair the prefix is ill-formed; both halves map to the character's end.
      if (i > 0 && t.charCodeAt(i - 1) >= 0xd800 && t.charCodeAt(i - 1) <= 0xdbff) continue;
      expect(map[i]).toBe(Buffer.byteLength(t.slice(0, i)));
    }
  });
});

describe('spans as token ranges', () => {
  it('with one token per byte, each span decodes to exactly its node text (non-ASCII included)', () => {
    const tok = byteTokenizer();
    const { enc, spans } = spansOf(SOURCE, tok);
    const g = grammarFor('python')!;
    const parser = new Parser();
    parser.setLanguage(g.language as Parser.Language);
    const nodeTexts = new Map<string, Set<string>>();
    const visit = (n: Parser.SyntaxNode): void => {
      const kind = g.kindOf.get(n.type);
      if (kind !== undefined && n.isNamed && n.text.length > 0) {
        const k = SPAN_KINDS[kind];
        if (!nodeTexts.has(k)) nodeTexts.set(k, new Set());
        nodeTexts.get(k)!.add(n.text);
      }
      for (const c of n.children) visit(c);
    };
    visit(parser.parse(SOURCE).rootNode);
    expect(spans.length).toBeGreaterThan(20);
    for (const s of spans)
      expect(nodeTexts.get(s.kind)!.has(tok.decode(enc.ids.subarray(s.start, s.end)))).toBe(true);
    const idents = spans
      .filter((s) => s.kind === 'identifier')
      .map((s) => tok.decode(enc.ids.subarray(s.start, s.end)));
    expect(idents).toEqual(expect.arrayContaining(['naïve_größe', 'grüß', '数', 'Café', 'método', 'ü']));
    for (const k of SPAN_KINDS) expect(spans.some((s) => s.kind === k)).toBe(true);
  });

  describe('with a trained byte-level BPE tokenizer', () => {
    let tok: Tokenizer;
    let dir: string;
    beforeAll(async () => {
      dir = await tempDir('spans');
      tok = await loadTokenizer(await smallTokenizer(dir, 400));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    it('each span is the smallest token range covering its node', () => {
      const { enc, spans } = spansOf(SOURCE, tok);
      const got = new Set(spans.map((s) => `${s.kind}:${s.start}:${s.end}`));
      expect(got).toEqual(expectedSpans(SOURCE, enc.byteOffsets, enc.ids.length));
    });
    it('the decoded tokens of a span contain the node text', () => {
      const { enc, spans } = spansOf(SOURCE, tok);
      const fn = spans.find((s) => s.kind === 'function')!;
      expect(tok.decode(enc.ids.subarray(fn.start, fn.end))).toContain('def grüß(name, 数 = 3):');
      for (const s of spans) {
        expect(s.start).toBeGreaterThanOrEqual(0);
        expect(s.end).toBeGreaterThan(s.start);
        expect(s.end).toBeLessThanOrEqual(enc.ids.length);
      }
    });
  });
});

/**
 * Span nodes and ERROR/MISSING count by plain recursion over SyntaxNode objects, visiting every node; node
 * ranges in UTF-8 bytes.
 */
function referenceWalk(text: string): { errors: number; nodes: string[] } {
  const g = grammarFor('python')!;
  const parser = new Parser();
  parser.setLanguage(g.language as Parser.Language);
  const toBytes = utf16ToUtf8Offsets(text);
  const nodes: string[] = [];
  let errors = 0;
  const visit = (n: Parser.SyntaxNode): void => {
    if (n.type === 'ERROR' || n.isMissing) errors++;
    const kind = n.isNamed ? g.kindOf.get(n.type) : undefined;
    if (kind !== undefined && n.endIndex > n.startIndex)
      nodes.push(`${kind}:${toBytes[n.startIndex]}:${toBytes[n.endIndex]}`);
    for (const c of n.children) visit(c);
  };
  visit(parser.parse(text).rootNode);
  return { errors, nodes };
}

const triples = (nodes: Int32Array): string[] =>
  Array.from(
    { length: nodes.length / 3 },
    (_, i) => `${nodes[3 * i]}:${nodes[3 * i + 1]}:${nodes[3 * i + 2]}`,
  );

const BROKEN = ['def f(:\n  return [x for x in\n', 'x = (1 + \nif y not in z and a is not b: pass\n'];

describe('span walk', () => {
  it('finds, in pre-order, every span node of real files and of broken code (it skips leaves)', () => {
    const root = join(pythonStdlibDir(), 'json');
    const texts = readdirSync(root)
      .filter((f) => f.endsWith('.py'))
      .map((f) => readFileSync(join(root, f), 'utf8'));
    texts.push(SOURCE, ...BROKEN);
    let withErrors = 0;
    for (const text of texts) {
      const want = referenceWalk(text);
      for (const got of [parseCodeJs(text, 'python')!, parseCode(text, 'python')!]) {
        expect(got.errors).toBe(want.errors);
        expect(triples(got.nodes)).toEqual(want.nodes);
      }
      if (want.errors > 0) withErrors++;
    }
    expect(withErrors).toBe(2);
  });

  it.skipIf(!tsAddon())(
    'the native addon finds the same nodes as the node-tree-sitter walk on the stdlib',
    () => {
      // Every .py file of some packages, with non-ASCII text and deep expressions, and files with parse
      // errors (Python 2 code and deliberate syntax errors in the test suite).
      const files = ['test/test_compile.py', 'test/test_codecs.py', 'test/test_unicode_identifiers.py']
        .map((f) => join(pythonStdlibDir(), f))
        .filter((f) => existsSync(f));
      const walk = (dir: string): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) walk(join(dir, e.name));
          else if (e.name.endsWith('.py')) files.push(join(dir, e.name));
        }
      };
      for (const pkg of [
        'email',
        'encodings',
        'lib2to3',
        'unittest',
        'test/tokenizedata',
        'test/test_future_stmt',
      ]) {
        if (existsSync(join(pythonStdlibDir(), pkg))) walk(join(pythonStdlibDir(), pkg));
      }
      expect(files.length).toBeGreaterThan(200);
      let nonAscii = 0;
      let withErrors = 0;
      for (const f of files) {
        const bytes = readFileSync(f);
        const text = bytes.toString('utf8');
        if (Buffer.from(text, 'utf8').equals(bytes) === false) continue; // not UTF-8: the build rejects it
        const js = parseCodeJs(text, 'python')!;
        const native = parseCode(text, 'python', bytes)!;
        expect(native.errors, f).toBe(js.errors);
        expect(native.nodes, f).toEqual(js.nodes);
        if (bytes.length !== text.length) nonAscii++;
        if (js.errors > 0) withErrors++;
      }
      expect(nonAscii).toBeGreaterThan(5);
      expect(withErrors).toBeGreaterThan(0);
    },
  );

  it.skipIf(!tsAddon())(
    'the native token ranges equal nodesToSpanArrays, with BPE and byte tokens',
    async () => {
      const dir = await tempDir('spans-native');
      try {
        const bpe = await loadTokenizer(await smallTokenizer(dir, 500));
        const texts = ['email', 'json', 'unittest'].flatMap((pkg) => {
          const root = join(pythonStdlibDir(), pkg);
          return readdirSync(root)
            .filter((f) => f.endsWith('.py'))
            .map((f) => readFileSync(join(root, f), 'utf8'));
        });
        // Long chains of nested nodes on one start token (the set path), broken code, nothing at all.
        texts.push(
          SOURCE,
          ...BROKEN,
          `x = ${'a.'.repeat(3000)}b\n`,
          `y = ${'('.repeat(200)}1${')'.repeat(200)}\n`,
          '',
        );
        let spans = 0;
        for (const text of texts) {
          const parsed = parseCode(text, 'python')!;
          for (const tok of [bpe, byteTokenizer()]) {
            const enc = tok.encodeWithOffsets(text);
            const want = nodesToSpanArrays(parsed.nodes, enc.byteOffsets, enc.ids.length);
            const [kind, start, end] = tsAddon()!.tokenSpans(parsed.nodes, enc.byteOffsets);
            expect([...kind]).toEqual([...want.kind]);
            expect([...start]).toEqual([...want.start]);
            expect([...end]).toEqual([...want.end]);
            spans += kind.length;
          }
        }
        expect(spans).toBeGreaterThan(100_000);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
