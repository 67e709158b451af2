/** `sdt traj show`: flags and wiring; the work is in posttrain/trajectories/show.ts. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bool, type CommandSpec, num, optStr } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import { loadTokenizer } from '../../pipelines/tokenizer/index.ts';
import { renderFrame, sleep, TerminalPlayer, type TokenText } from '../sample/render.ts';
import { readTrajectories, replayStates } from '../trajectories/record.ts';
import { trajectoryHtml, trajectorySvg } from '../trajectories/show.ts';

export const command: CommandSpec = {
  name: 'traj show',
  summary: 'replay a recorded sampling trajectory; write it as SVG or HTML',
  options: {
    row: {
      type: 'number',
      min: 0,
      integer: true,
      description: 'row of the file to show',
      default: 0,
      arg: 'I',
    },
    svg: {
      type: 'string',
      output: 'file',
      description: 'write an SVG of which token was committed at which step',
      arg: 'OUT',
    },
    html: {
      type: 'string',
      output: 'file',
      description: 'write an HTML page with a step slider',
      arg: 'OUT',
    },
    tokenizer: {
      type: 'string',
      description: "tokenizer.json for token texts [default: the checkpoint's, else token ids]",
      arg: 'FILE',
    },
    mask: {
      type: 'number',
      min: 0,
      integer: true,
      description: 'the <|mask|> id used on the canvas',
      default: 3,
    },
    'step-delay': {
      type: 'number',
      min: 0,
      description: 'terminal: milliseconds per step',
      default: 60,
      arg: 'MS',
    },
    'no-animate': { type: 'boolean', description: 'print every step instead of animating in place' },
  },
  positionals: [
    {
      name: 'FILE',
      description: 'trajectory Arrow file from `sdt sample --record-trajectory`',
      required: true,
    },
  ],
  examples: ['sdt traj show out/traj.arrow --row 2', 'sdt traj show out/traj.arrow --svg out/traj.svg'],
  async run(o, pos) {
    const file = pos[0];
    const rows = await readTrajectories(file);
    const i = num(o, 'row');
    if (!Number.isInteger(i) || i < 0 || i >= rows.length) {
      throw new UserError(`--row ${i}: ${file} has ${rows.length} rows (0..${rows.length - 1}).`);
    }
    const row = rows[i];
    const mask = num(o, 'mask');
    let tokPath = optStr(o, 'tokenizer');
    if (!tokPath && row.checkpoint && existsSync(join(row.checkpoint, 'tokenizer.json'))) {
      tokPath = join(row.checkpoint, 'tokenizer.json');
    }
    const tok = tokPath ? await loadTokenizer(tokPath) : null;
    const text: TokenText = tok ? (id) => tok.tokenText(id) : (id) => `⟨${id}⟩`;
    const promptText = tok ? tok.decode(row.prompt) : Array.from(row.prompt, text).join('');
    const svg = optStr(o, 'svg');
    const html = optStr(o, 'html');
    if (svg) await atomicWriteFile(svg, trajectorySvg(row, text));
    if (html) await atomicWriteFile(html, trajectoryHtml(row, text, mask));
    if (svg || html) {
      process.stderr.write(`wrote ${[svg, html].filter(Boolean).join(' and ')}\n`);
      return 0;
    }
    const states = replayStates(row, mask);
    const tty = Boolean(process.stdout.isTTY) && !bool(o, 'no-animate');
    const player = tty ? new TerminalPlayer(process.stdout) : null;
    for (let k = 0; k < states.length; k++) {
      const s = row.steps[k];
      const head = `block ${s.block} step ${s.step} ${s.kind} ${s.positions.length} (#${k + 1}/${states.length})`;
      const frame = renderFrame(promptText, states[k], mask, text, s, tty);
      if (player) {
        player.draw(`${head}\n${frame}`);
        await sleep(num(o, 'step-delay'));
      } else {
        process.stdout.write(`--- ${head}\n${frame}\n`);
      }
    }
    process.stdout.write(
      `${row.id}: ${row.tokens.length} tokens, ${row.steps.length} steps, ${row.forwardPasses} forward passes${row.eos ? ', ended at <|eos|>' : ''}\n`,
    );
    return 0;
  },
};
