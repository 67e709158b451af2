import { join } from 'node:path';
import { type CommandSpec, list, num, optNum, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { SPAN_KINDS, type SpanKind, type Split } from '../../schemas/dataset.ts';
import { formatRow } from '../dataset/inspect.ts';
import { openDataset } from '../dataset/read.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import type { Tokenizer } from '../tokenizer/types.ts';

export const command: CommandSpec = {
  name: 'data inspect',
  summary: 'print a dataset summary and rows with their spans (kind, token range, covered text)',
  positionals: [
    { name: 'DIR', description: 'dataset directory written by `sdt data build`', required: true },
  ],
  options: {
    split: {
      type: 'string',
      description: 'which split to show',
      choices: ['train', 'validation'],
      default: 'train',
    },
    limit: { type: 'number', min: 0, integer: true, arg: 'N', description: 'rows to show', default: 3 },
    row: {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'show only the row with this index in the split',
    },
    'max-spans': {
      type: 'number',
      min: 0,
      integer: true,
      arg: 'N',
      description: 'spans to show per row',
      default: 25,
    },
    kinds: { type: 'list', arg: 'KIND', description: `only spans of these kinds (${SPAN_KINDS.join(', ')})` },
    tokenizer: {
      type: 'string',
      arg: 'FILE',
      description: 'tokenizer.json to decode span text [default: the one in the manifest]',
    },
  },
  examples: [
    'sdt data inspect runs/data',
    'sdt data inspect runs/data --split validation --row 7 --kinds function,block',
  ],
  async run(opts, [dir]) {
    const ds = await openDataset(dir, { allowIncomplete: true });
    const m = ds.manifest;
    const kinds = list(opts, 'kinds') as SpanKind[];
    for (const k of kinds) {
      if (!SPAN_KINDS.includes(k))
        throw new UserError(`--kinds: unknown span kind "${k}"; one of ${SPAN_KINDS.join(', ')}.`);
    }
    let tokenizer: Tokenizer | undefined;
    const tokPath = optStr(opts, 'tokenizer') ?? m.tokenizerPath;
    try {
      tokenizer = await loadTokenizer(tokPath);
      if (tokenizer.hash !== m.tokenizerHash) {
        process.stderr.write(
          `warning: ${tokPath} is not the tokenizer this dataset was built with; span text not shown.\n`,
        );
        tokenizer = undefined;
      }
    } catch {
      process.stderr.write(
        `warning: tokenizer ${tokPath} not readable; span text not shown (pass --tokenizer).\n`,
      );
    }
    const out = process.stdout;
    out.write(
      `${join(dir, 'manifest.json')}: ${m.complete ? 'complete' : 'INCOMPLETE (rerun the build to finish)'}, ` +
        `${m.shards.length} shards, tokenizer ${m.tokenizerHash.slice(0, 12)}\n` +
        `  train ${m.counts.train.rows} rows / ${m.counts.train.tokens} tokens; validation ${m.counts.validation.rows} rows / ${m.counts.validation.tokens} tokens\n` +
        `  rejects: ${
          Object.entries(m.rejects)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'none'
        }\n\n`,
    );
    const split = str(opts, 'split') as Split;
    const only = optNum(opts, 'row');
    const limit = num(opts, 'limit');
    let i = 0;
    let shown = 0;
    for await (const row of ds.rows(split)) {
      if (only === undefined || i === only) {
        out.write(formatRow(row, i, { tokenizer, maxSpans: num(opts, 'max-spans'), kinds }));
        shown++;
        if (only !== undefined || shown >= limit) break;
      }
      i++;
    }
    if (only !== undefined && shown === 0) {
      throw new UserError(`--row ${only}: the ${split} split has only ${i} rows.`);
    }
    return 0;
  },
};
