/** `sdt traj filter`: flags and wiring; the work is in posttrain/trajectories/filter.ts. */
import { bool, type CommandSpec, list, num, type OptionValues, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteJson } from '../../common/fs.ts';
import { filterTrajectories, parseThreshold, SCORE_KEYS, type ScoreKey } from '../trajectories/filter.ts';
import { readScored, type ScoredRow, writeScored } from '../trajectories/score.ts';

export const command: CommandSpec = {
  name: 'traj filter',
  summary: 'keep the top-k trajectories per prompt by a score, with thresholds on others',
  description: `
Groups trajectories by prompt (the id up to the last '#'), drops those failing any --require, sorts the rest by
--by (elbo, jump, verifier, elbo-per-token: higher is better; tau, lev, forward-passes: lower is better) and
keeps the first --top-k; ties break on the trajectory id. Prints one line per prompt; --report writes the
same as JSON.`,
  positionals: [{ name: 'IN', description: 'scored trajectory file (sdt traj score)', required: true }],
  options: {
    out: {
      type: 'string',
      output: 'file',
      arg: 'OUT',
      description: 'Arrow file of the kept trajectories',
      required: true,
    },
    by: {
      type: 'string',
      description: 'score to rank by',
      default: 'elbo',
      choices: Object.keys(SCORE_KEYS),
    },
    'top-k': {
      type: 'number',
      min: 1,
      integer: true,
      arg: 'K',
      description: 'trajectories kept per prompt',
      default: 1,
    },
    require: {
      type: 'list',
      arg: 'KEY>=X',
      description: 'thresholds, e.g. verifier>=1 (repeatable)',
      default: [],
    },
    'allow-empty': {
      type: 'boolean',
      description: 'write an empty file when nothing passes (otherwise an error)',
    },
    report: {
      type: 'string',
      output: 'file',
      arg: 'FILE',
      description: 'write the per-prompt report as JSON here',
    },
  },
  examples: ['sdt traj filter scored.arrow --by elbo --top-k 2 --require verifier>=1 --out kept.arrow'],
  async run(o, pos) {
    const topK = num(o, 'top-k');
    if (!Number.isInteger(topK) || topK < 1)
      throw new UserError('sdt traj filter: --top-k must be a positive integer.');
    const rows = await readScored(pos[0]);
    const { kept, report } = filterTrajectories(rows, {
      by: str(o, 'by') as ScoreKey,
      topK,
      require: list(o, 'require').map(parseThreshold),
    });
    if (kept.length === 0 && !bool(o, 'allow-empty')) throw new UserError(emptyFilterReason(pos[0], rows, o));
    await writeScored(str(o, 'out'), kept);
    for (const p of report) {
      const why = Object.entries(p.rejected)
        .map(([k, v]) => `${v} failed ${k}`)
        .join(', ');
      process.stdout.write(
        `${p.prompt}: ${p.candidates} candidates, kept ${p.kept.map((k) => `${k.id} (${str(o, 'by')} ${k.score.toFixed(3)})`).join(', ') || 'none'}${why ? `; ${why}` : ''}\n`,
      );
    }
    const reportPath = optStr(o, 'report');
    if (reportPath) await atomicWriteJson(reportPath, { by: str(o, 'by'), top_k: topK, prompts: report });
    process.stdout.write(
      `kept ${kept.length} of ${rows.length} trajectories over ${report.length} prompts -> ${str(o, 'out')}\n`,
    );
    return 0;
  },
};

/** Why a filter kept nothing, said before anything is written: unscored input, or thresholds no row meets. */
function emptyFilterReason(input: string, rows: ScoredRow[], o: OptionValues): string {
  const by = str(o, 'by') as ScoreKey;
  if (rows.length === 0) return `${input} holds no trajectories; nothing to filter.`;
  if (rows.every((r) => SCORE_KEYS[by].get(r) === null))
    return `no trajectory of ${input} has a ${by} score: it is unscored for --by ${by}; run \`sdt traj score ${input} --out SCORED\` (with what ${by} needs) and filter that.`;
  return `no trajectory of ${input} passes ${list(o, 'require').join(', ') || `--by ${by}`}; loosen --require, or pass --allow-empty to write an empty file.`;
}
