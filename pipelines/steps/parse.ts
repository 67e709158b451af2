import type Parser from 'tree-sitter';
import { type Grammar, grammarFor, parserFor } from './grammar.ts';

/**
 * Nodes worth a span, as parallel arrays (millions of small objects would dominate a worker's memory):
 * kind code and range in UTF-16 code units (node-tree-sitter's unit), in pre-order.
 */
export class NodeList {
  length = 0;
  kind = new Uint8Array(256);
  start16 = new Int32Array(256);
  end16 = new Int32Array(256);

  push(kind: number, start16: number, end16: number): void {
    if (this.length === this.kind.length) {
      const grow = <T extends Uint8Array | Int32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.kind = grow(this.kind);
      this.start16 = grow(this.start16);
      this.end16 = grow(this.end16);
    }
    this.kind[this.length] = kind;
    this.start16[this.length] = start16;
    this.end16[this.length] = end16;
    this.length++;
  }
}

export interface ParseResult {
  /** ERROR and MISSING nodes. */
  errors: number;
  nodes: NodeList;
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

/**
 * Parse with tree-sitter and collect, in one cursor walk, the error count and the nodes that become spans
 * (pre-order: outer nodes before the nodes they contain). Undefined for languages with no grammar.
 */
export function parseCode(text: string, language: string): ParseResult | undefined {
  const parser = parserFor(language);
  const grammar = grammarFor(language);
  if (!parser || !grammar) return undefined;
  const tree = parser.parse(text);
  const t = typeTables(grammar);
  const cursor = tree.walk();
  const nodes = new NodeList();
  // A tree with errors is walked in full: ERROR and MISSING nodes can sit anywhere, tokens included.
  if (tree.rootNode.hasError) return { errors: walkAll(cursor, grammar, t, nodes), nodes };
  walkSpans(cursor, grammar, t, nodes);
  return { errors: 0, nodes };
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

/** Parse only, for the benchmark's baseline. */
export function parseOnly(text: string, language: string): boolean {
  const tree = parserFor(language)?.parse(text);
  return tree !== undefined;
}
