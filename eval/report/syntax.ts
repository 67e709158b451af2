import { createRequire } from 'node:module';

interface TsNode {
  type: string;
  isMissing: boolean;
  childCount: number;
  child(i: number): TsNode | null;
}
interface TsParser {
  setLanguage(lang: unknown): void;
  parse(text: string): { rootNode: TsNode };
}

let parser: TsParser | null = null;

function getParser(): TsParser {
  if (!parser) {
    // tree-sitter is a native CommonJS addon.
    const require = createRequire(import.meta.url);
    const Parser = require('tree-sitter') as new () => TsParser;
    parser = new Parser();
    parser.setLanguage(require('tree-sitter-python'));
  }
  return parser;
}

/** True when tree-sitter-python parses `code` with no ERROR and no MISSING node. */
export function isSyntaxValid(code: string): boolean {
  const stack: TsNode[] = [getParser().parse(code).rootNode];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.type === 'ERROR' || n.isMissing) return false;
    for (let i = 0; i < n.childCount; i++) {
      const c = n.child(i);
      if (c) stack.push(c);
    }
  }
  return true;
}

/** Share of `codes` that parse cleanly (null for an empty list). */
export function syntaxValidRate(codes: string[]): number | null {
  if (codes.length === 0) return null;
  return codes.filter(isSyntaxValid).length / codes.length;
}
