/**
 * Showing a canvas being filled in: terminal frames (ANSI) for `sdt sample` and `sdt traj show`.
 * Masked positions show as a dim block, tokens committed at the current step in bold green,
 * revised ones in yellow.
 */
import type { TrajectoryStep } from '../../schemas/trajectory.ts';

export type TokenText = (id: number) => string;

const DIM = '\x1b[2m';
const NEW = '\x1b[1;32m';
const REVISED = '\x1b[1;33m';
const RESET = '\x1b[0m';
export const MASK_GLYPH = '░';

/** Control characters a model may emit are drawn as their Unicode pictures, never sent to the terminal. */
export function printable(t: string): string {
  return t.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) =>
    String.fromCharCode(c === '\x7f' ? 0x2421 : 0x2400 + c.charCodeAt(0)),
  );
}

/** One frame: the prompt, then the generated canvas with the step's changes highlighted. */
export function renderFrame(
  prompt: string,
  canvas: Int32Array,
  mask: number,
  text: TokenText,
  step: TrajectoryStep | null,
  color: boolean,
): string {
  const changed = new Map<number, string>();
  if (step) for (const p of step.positions) changed.set(p, step.kind === 'commit' ? NEW : REVISED);
  let out = printable(prompt);
  for (let p = 0; p < canvas.length; p++) {
    const id = canvas[p];
    if (id === mask) out += color ? `${DIM}${MASK_GLYPH}${RESET}` : MASK_GLYPH;
    else {
      const t = printable(text(id));
      const c = changed.get(p);
      out += color && c ? `${c}${t}${RESET}` : t;
    }
  }
  return out;
}

/** Plays frames in place on a terminal: clears the previous frame's lines before drawing the next. */
export class TerminalPlayer {
  private lines = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  draw(frame: string): void {
    if (this.lines > 0) this.stream.write(`\x1b[${this.lines}F\x1b[J`);
    else this.stream.write('\x1b[J');
    this.stream.write(`${frame}\n`);
    const cols = this.stream.columns || 80;
    // Count the rows the frame occupies so the next draw can move back up over them.
    this.lines = frame
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .reduce((n, l) => n + Math.max(1, Math.ceil([...l].length / cols)), 0);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
