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
/** Per grammar: node type id -> span kind code. Filled on first sight of each id: every cursor property
 * is a native call, and reading the type name for every node would cost more than the parse itself. */
const kindByIdCache = new WeakMap<Grammar, Int16Array>();

function kindTable(g: Grammar): Int16Array {
  let t = kindByIdCache.get(g);
  if (!t) {
    t = new Int16Array(65536).fill(UNSEEN);
    kindByIdCache.set(g, t);
  }
  return t;
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
  const hasError = tree.rootNode.hasError;
  const kinds = kindTable(grammar);
  const cursor = tree.walk();
  const nodes = new NodeList();
  let errors = 0;
  const visit = (c: Parser.TreeCursor): void => {
    const id = c.nodeTypeId;
    let kind = kinds[id];
    if (kind === UNSEEN) {
      const k = c.nodeIsNamed ? grammar.kindOf.get(c.nodeType) : undefined;
      kind = k ?? NOT_A_SPAN;
      kinds[id] = kind;
    }
    if (hasError && (c.nodeType === 'ERROR' || c.nodeIsMissing)) errors++;
    if (kind >= 0) {
      const start16 = c.startIndex;
      const end16 = c.endIndex;
      if (end16 > start16) nodes.push(kind, start16, end16);
    }
  };
  // Iterative pre-order walk: deep trees (long expressions) must not overflow the stack.
  for (;;) {
    visit(cursor);
    if (cursor.gotoFirstChild()) continue;
    while (!cursor.gotoNextSibling()) {
      if (!cursor.gotoParent()) return { errors, nodes };
    }
  }
}

/** Parse only, for the benchmark's baseline. */
export function parseOnly(text: string, language: string): boolean {
  const tree = parserFor(language)?.parse(text);
  return tree !== undefined;
}
