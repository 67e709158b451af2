import type Parser from 'tree-sitter';
import { grammarFor, parserFor } from './grammar.ts';

/** One node worth a span: its kind code and its range in UTF-16 code units (node-tree-sitter's unit). */
export interface NodeRange {
  kind: number;
  start16: number;
  end16: number;
}

export interface ParseResult {
  /** ERROR and MISSING nodes. */
  errors: number;
  nodes: NodeRange[];
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
  const cursor = tree.walk();
  const nodes: NodeRange[] = [];
  let errors = 0;
  const visit = (c: Parser.TreeCursor): void => {
    const type = c.nodeType;
    if (type === 'ERROR' || c.nodeIsMissing) errors++;
    if (c.nodeIsNamed) {
      const kind = grammar.kindOf.get(type);
      if (kind !== undefined && c.endIndex > c.startIndex) {
        nodes.push({ kind, start16: c.startIndex, end16: c.endIndex });
      }
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
