import type { CommandSpec } from '../common/cli.ts';

/**
 * Every subcommand, loaded lazily so `sdt --help` stays fast. Each module exports `command: CommandSpec`.
 * Add one line per command; keep the command's code in its own package (pipelines/, trainer/, eval/...).
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<{ command: CommandSpec }>;
}

export const commands: CommandEntry[] = [
  {
    name: 'tokenizer train',
    summary: 'train a byte-level BPE tokenizer (tokenizer.json)',
    load: () => import('../pipelines/tokenizer/cli-train.ts'),
  },
  {
    name: 'tokenizer encode',
    summary: 'show the tokens of a text or file',
    load: () => import('../pipelines/tokenizer/cli-encode.ts'),
  },
  {
    name: 'tokenizer stats',
    summary: 'bytes/token of a tokenizer on a corpus split',
    load: () => import('../pipelines/tokenizer/cli-stats.ts'),
  },
  {
    name: 'data corrupt',
    summary: 'write mask/edit corruptions of a dataset to Arrow and show one as a diff',
    load: () => import('../pipelines/corrupt/command.ts'),
  },
];
