import type { DatasetRow, SpanKind } from '../../schemas/dataset.ts';
import type { Tokenizer } from '../tokenizer/types.ts';

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * A row for people: its header, the start of its text, then its spans, each with the text its tokens
 * cover (decoded with the dataset's tokenizer when it is available).
 */
export function formatRow(
  row: DatasetRow,
  index: number,
  opts: { tokenizer?: Tokenizer; maxSpans: number; kinds?: SpanKind[]; textChars?: number },
): string {
  const lines = [
    `#${index} ${row.id}  (origin ${row.origin}, ${row.language}, ${row.split}, ${row.tokens.length} tokens, ${Buffer.byteLength(row.text)} bytes, ${row.spans.length} spans, ${row.parseErrors} parse errors)`,
    `  text: ${JSON.stringify(clip(row.text, opts.textChars ?? 160))}`,
  ];
  const spans = row.spans.filter((s) => !opts.kinds?.length || opts.kinds.includes(s.kind));
  const counts = new Map<string, number>();
  for (const s of row.spans) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
  lines.push(`  spans by kind: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  for (const s of spans.slice(0, opts.maxSpans)) {
    const covered = opts.tokenizer
      ? JSON.stringify(clip(opts.tokenizer.decode(row.tokens.subarray(s.start, s.end)), 70))
      : '';
    lines.push(`  ${s.kind.padEnd(10)} [${s.start}, ${s.end})`.padEnd(32) + covered);
  }
  if (spans.length > opts.maxSpans)
    lines.push(`  … ${spans.length - opts.maxSpans} more spans (--max-spans)`);
  return `${lines.join('\n')}\n`;
}
