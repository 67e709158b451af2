import type Parser from 'tree-sitter';
import { type Grammar, grammarFor, parserFor } from './grammar.ts';
import { noteParsedText } from './native-memory.ts';
import { utf16ToUtf8Offsets } from './spans.ts';
import { tsAddon } from './ts-addon.ts';

/**
 * Nodes worth a span, as (kind code, start, end) triples in one growable array (millions of small objects
 * would dominate a worker's memory), in pre-order.
 */
class NodeList {
  length = 0;
  data = new Int32Array(768);

  push(kind: number, start: number, end: number): void {
    if (3 * this.length + 3 > this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    const i = 3 * this.length++;
    this.data[i] = kind;
    this.data[i + 1] = start;
    this.data[i + 2] = end;
  }
}

export interface ParseResult {
  /** ERROR and MISSING nodes. */
  errors: number;
  /**
   * The nodes that become spans, in pre-order (outer nodes before the nodes they contain), as
   * (kind code, start, end) triples; start and end are UTF-8 byte offsets of the text.
   */
  nodes: Int32Array;
}

const NOT_A_SPAN = -1;
const UNSEEN = -2;

/**
 * Per grammar, by node type id, filled on first sight of each id: every cursor property is a native call
 * (~0.1 us), and reading the type name for every node would cost more than the parse itself.
 */
interface TypeTables {
  /** Span kind code, NOT_A_SPAN, or UNSEEN. */
  kind: Int16Array;
  /** 1 where no span can lie below a node of this type: anonymous tokens and named leaves. */
  leaf: Uint8Array;
}
const tablesCache = new WeakMap<Grammar, TypeTables>();

function typeTables(g: Grammar): TypeTables {
  let t = tablesCache.get(g);
  if (!t) {
    t = { kind: new Int16Array(65536).fill(UNSEEN), leaf: new Uint8Array(65536) };
    tablesCache.set(g, t);
  }
  return t;
}

/** Learn the tables' entries for the cursor's node type; returns its span kind. */
function learnType(c: Parser.TreeCursor, id: number, g: Grammar, t: TypeTables): number {
  const named = c.nodeIsNamed;
  const type = c.nodeType;
  const kind = named ? (g.kindOf.get(type) ?? NOT_A_SPAN) : NOT_A_SPAN;
  t.kind[id] = kind;
  // ERROR nodes (and anything odd) are never leaves; anonymous nodes are tokens, or aliases of rules
  // made only of tokens ("not in"), so nothing named lies below them.
  t.leaf[id] = type !== 'ERROR' && (!named || g.namedLeaves.has(type)) ? 1 : 0;
  return kind;
}

/** Span kind by symbol id for the addon: the grammar's kinds of named symbols, -1 elsewhere. */
const addonKinds = new WeakMap<Grammar, Int16Array>();

function addonKindTable(g: Grammar, language: unknown): Int16Array {
  let t = addonKinds.get(g);
  if (!t) {
    t = new Int16Array(65536).fill(NOT_A_SPAN);
    const symbols = tsAddon()!.symbols(language);
    for (let id = 0; id < symbols.length; id++) {
      const [name, named] = symbols[id];
      if (named) t[id] = g.kindOf.get(name) ?? NOT_A_SPAN;
    }
    addonKinds.set(g, t);
  }
  return t;
}

/** The grammar package's TSLanguage external (the package object wraps it). */
const languageHandle = (g: Grammar): unknown => (g.language as { language: unknown }).language;

/**
 * Parse with tree-sitter and collect the error count and the nodes that become spans. `utf8` is the text's
 * UTF-8 encoding when the caller has it. Uses the native addon when it is built (one call, byte offsets
 * directly), else a cursor walk through node-tree-sitter; both give the same nodes (test/data-spans.test.ts).
 * Undefined for languages with no grammar.
 */
export function parseCode(text: string, language: string, utf8?: Uint8Array): ParseResult | undefined {
  const grammar = grammarFor(language);
  if (!grammar) return undefined;
  if (!tsAddon()) return parseCodeJs(text, language);
  return parseUtf8(utf8 ?? Buffer.from(text, 'utf8'), language);
}

/**
 * parseCode on UTF-8 bytes alone, through the addon; undefined when the addon is not built or the language
 * has no grammar (callers then decode the text for parseCode).
 */
export function parseUtf8(utf8: Uint8Array, language: string): ParseResult | undefined {
  const grammar = grammarFor(language);
  const addon = tsAddon();
  if (!grammar || !addon) return undefined;
  const handle = languageHandle(grammar);
  const out = addon.parse(handle, utf8, addonKindTable(grammar, handle));
  return { errors: out[0], nodes: out.subarray(1) };
}

/**
 * parseCode through node-tree-sitter: one cursor walk collects the error count and the span nodes, whose
 * UTF-16 indices (node-tree-sitter's unit for JS strings) are then turned into UTF-8 byte offsets.
 */
export function parseCodeJs(text: string, language: string): ParseResult | undefined {
  const parser = parserFor(language);
  const grammar = grammarFor(language);
  if (!parser || !grammar) return undefined;
  const tree = parser.parse(text);
  noteParsedText(text.length);
  const t = typeTables(grammar);
  const cursor = tree.walk();
  const list = new NodeList();
  // A tree with errors is walked in full: ERROR and MISSING nodes can sit anywhere, tokens included.
  let errors = 0;
  if (tree.rootNode.hasError) errors = walkAll(cursor, grammar, t, list);
  else walkSpans(cursor, grammar, t, list);
  const nodes = list.data.slice(0, 3 * list.length);
  if (Buffer.byteLength(text, 'utf8') !== text.length) {
    const map = utf16ToUtf8Offsets(text);
    for (let i = 0; i < nodes.length; i += 3) {
      nodes[i + 1] = map[nodes[i + 1]];
      nodes[i + 2] = map[nodes[i + 2]];
    }
  }
  return { errors, nodes };
}

/**
 * The span walk of an error-free tree: it does not descend into nodes that cannot hold a span, saving the
 * gotoFirstChild call on every token and leaf (about 60% of nodes). Iterative: deep trees (long
 * expressions) must not overflow the stack.
 */
function walkSpans(c: Parser.TreeCursor, g: Grammar, t: TypeTables, nodes: NodeList): void {
  const kinds = t.kind;
  const leaf = t.leaf;
  for (;;) {
    const id = c.nodeTypeId;
    let kind = kinds[id];
    if (kind === UNSEEN) kind = learnType(c, id, g, t);
    if (kind >= 0) {
      const start16 = c.startIndex;
      const end16 = c.endIndex;
      if (end16 > start16) nodes.push(kind, start16, end16);
    }
    if (leaf[id] === 0 && c.gotoFirstChild()) continue;
    while (!c.gotoNextSibling()) {
      if (!c.gotoParent()) return;
    }
  }
}

/** Every node, counting ERROR and MISSING nodes; returns the count. */
function walkAll(c: Parser.TreeCursor, g: Grammar, t: TypeTables, nodes: NodeList): number {
  const kinds = t.kind;
  let errors = 0;
  for (;;) {
    const id = c.nodeTypeId;
    let kind = kinds[id];
    if (kind === UNSEEN) kind = learnType(c, id, g, t);
    if (c.nodeType === 'ERROR' || c.nodeIsMissing) errors++;
    if (kind >= 0) {
      const start16 = c.startIndex;
      const end16 = c.endIndex;
      if (end16 > start16) nodes.push(kind, start16, end16);
    }
    if (c.gotoFirstChild()) continue;
    while (!c.gotoNextSibling()) {
      if (!c.gotoParent()) return errors;
    }
  }
}

/** Parse only through node-tree-sitter, for the benchmark's baseline. */
export function parseOnly(text: string, language: string): boolean {
  const tree = parserFor(language)?.parse(text);
  return tree !== undefined;
}

/** Parse only through the addon (UTF-8 input); undefined when the addon is not built. */
export function parseOnlyNative(utf8: Uint8Array, language: string): boolean | undefined {
  const g = grammarFor(language);
  const addon = tsAddon();
  if (!g || !addon) return undefined;
  return addon.parseOnly(languageHandle(g), utf8);
}
