import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type Parser from 'tree-sitter';
import { SPAN_KINDS, type SpanKind } from '../../schemas/dataset.ts';

const require = createRequire(import.meta.url);

interface NodeTypeEntry {
  type: string;
  named: boolean;
  subtypes?: { type: string; named: boolean }[];
  children?: unknown;
  fields?: Record<string, unknown>;
}

function namedLeafTypes(nodeTypes: NodeTypeEntry[]): Set<string> {
  const hasNamedChildren = (t: NodeTypeEntry): boolean =>
    t.children !== undefined || (t.fields !== undefined && Object.keys(t.fields).length > 0);
  return new Set(nodeTypes.filter((t) => t.named && !t.subtypes && !hasNamedChildren(t)).map((t) => t.type));
}

/** A tree-sitter grammar and which of its node types become which span kind. */
export interface Grammar {
  language: unknown;
  /** Node type name -> index in SPAN_KINDS. */
  kindOf: Map<string, number>;
  /**
   * Named node types that never have named children (node-types.json lists no children or fields), so no
   * span can lie inside them: the span walk does not descend into them.
   */
  namedLeaves: Set<string>;
}

/** All concrete node types under a supertype (supertypes nest: expression > primary_expression). */
function expand(types: Map<string, NodeTypeEntry>, name: string, out: Set<string>): void {
  const entry = types.get(name);
  if (!entry?.subtypes) {
    out.add(name);
    return;
  }
  for (const s of entry.subtypes) if (s.named) expand(types, s.type, out);
}

/**
 * Span kinds come from the grammar's own supertypes (node-types.json), so the statement and expression
 * sets are the grammar's, not a hand-kept list. A node gets its most specific kind.
 */
function pythonGrammar(): Grammar {
  const nodeTypes = JSON.parse(
    readFileSync(require.resolve('tree-sitter-python/src/node-types.json'), 'utf8'),
  ) as NodeTypeEntry[];
  const byName = new Map(nodeTypes.map((t) => [t.type, t]));
  const statements = new Set<string>();
  expand(byName, '_simple_statement', statements);
  expand(byName, '_compound_statement', statements);
  const expressions = new Set<string>();
  expand(byName, 'expression', expressions);
  const kindOf = new Map<string, number>();
  const code = (k: SpanKind): number => SPAN_KINDS.indexOf(k);
  for (const t of expressions) kindOf.set(t, code('expression'));
  for (const t of statements) kindOf.set(t, code('statement'));
  kindOf.set('block', code('block'));
  kindOf.set('function_definition', code('function'));
  kindOf.set('identifier', code('identifier'));
  return { language: require('tree-sitter-python'), kindOf, namedLeaves: namedLeafTypes(nodeTypes) };
}

const loaders: Record<string, () => Grammar> = { python: pythonGrammar };
const grammars = new Map<string, Grammar>();
const parsers = new Map<string, Parser>();

/** Languages that get parsed and annotated; others are kept as text with no spans. */
export const PARSED_LANGUAGES = Object.keys(loaders);

export function grammarFor(language: string): Grammar | undefined {
  if (!loaders[language]) return undefined;
  let g = grammars.get(language);
  if (!g) {
    g = loaders[language]();
    grammars.set(language, g);
  }
  return g;
}

export function parserFor(language: string): Parser | undefined {
  const g = grammarFor(language);
  if (!g) return undefined;
  let p = parsers.get(language);
  if (!p) {
    // Loaded on first use: with the native addon a data worker never needs node-tree-sitter, and
    // importing it (an ESM import of a CommonJS package is lexed for its exports) made a worker start in
    // 117 ms instead of 69 ms.
    const ParserClass = require('tree-sitter') as typeof Parser;
    p = new ParserClass();
    p.setLanguage(g.language as Parser.Language);
    parsers.set(language, p);
  }
  return p;
}
