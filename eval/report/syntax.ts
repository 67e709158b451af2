import { createRequire } from 'node:module';

interface TsNode {
  type: string;
  isMissing: boolean;
  childCount: number;
  child(i: number): TsNode | null;
  namedChildCount: number;
  namedChild(i: number): TsNode | null;
  childForFieldName(name: string): TsNode | null;
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

/** Expressions that act when they stand alone as a statement; a bare name or literal does nothing. */
const ACTING_EXPRESSIONS = new Set(['assignment', 'augmented_assignment', 'call', 'await', 'yield']);

/**
 * A comment, an expression statement that does nothing (a docstring, a bare name, a literal, an
 * attribute), or a nested function or class whose own body does nothing.
 */
function isInert(n: TsNode): boolean {
  if (n.type === 'comment') return true;
  if (n.type === 'decorated_definition') {
    const d = n.childForFieldName('definition');
    return d ? isInert(d) : true;
  }
  if (n.type === 'function_definition' || n.type === 'class_definition') {
    const body = n.childForFieldName('body');
    return !body || !bodyActs(body);
  }
  if (n.type !== 'expression_statement') return false;
  for (let i = 0; i < n.namedChildCount; i++) {
    const e = n.namedChild(i);
    if (e && ACTING_EXPRESSIONS.has(e.type)) return false;
  }
  return true;
}

/** A block holds a statement that does something (isInert). */
function bodyActs(body: TsNode): boolean {
  for (let i = 0; i < body.namedChildCount; i++) {
    const c = body.namedChild(i);
    if (c && !isInert(c)) return true;
  }
  return false;
}

/**
 * True when the last top-level function of `code` has a body statement that does something: not only
 * comments, its docstring and bare names or literals. Those parse, so syntax alone let on-policy runs that
 * kept what passed converge on bodies of `# the the the` and then of `This` lines, and later on a nested
 * `def __init__(self):` of attribute chains (measured, docs/distill.md).
 */
export function functionWritesCode(code: string): boolean {
  const root = getParser().parse(code).rootNode;
  let fn: TsNode | null = null;
  for (let i = 0; i < root.namedChildCount; i++) {
    let c = root.namedChild(i);
    if (c?.type === 'decorated_definition') c = c.childForFieldName('definition');
    if (c?.type === 'function_definition') fn = c;
  }
  const body = fn?.childForFieldName('body');
  return body ? bodyActs(body) : false;
}

/** Share of `codes` that parse cleanly (null for an empty list). */
export function syntaxValidRate(codes: string[]): number | null {
  if (codes.length === 0) return null;
  return codes.filter(isSyntaxValid).length / codes.length;
}
