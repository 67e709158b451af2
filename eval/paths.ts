import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OptionSpec } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the benchmark data lives unless --data says otherwise: $SDT_EVAL_DATA, else <repo>/runs/eval-data.
 * The files are the upstream releases, downloaded by the user (docs/eval.md lists them); never committed.
 */
export const DEFAULT_DATA_DIR = process.env.SDT_EVAL_DATA ?? resolve(REPO_ROOT, 'runs', 'eval-data');

/** `--data-dir`: where commands that take a `--suite` find its data. */
export const SUITE_DATA_DIR_OPTION: OptionSpec = {
  type: 'string',
  arg: 'DIR',
  description: 'evaluation data for --suite',
  default: DEFAULT_DATA_DIR,
};

/** The path of one data file, with an error that says which flag to fix when it is missing. */
export function dataFile(dataDir: string, ...parts: string[]): string {
  const path = join(dataDir, ...parts);
  if (!existsSync(path)) {
    throw new UserError(
      `benchmark file not found: ${path}. Point the data flag (--data for eval and report, --data-dir for traj and bench) at the folder that holds ${parts[0]}/ ` +
        `(default ${DEFAULT_DATA_DIR}, or $SDT_EVAL_DATA); docs/eval.md says where each suite's files come from.`,
    );
  }
  return path;
}
