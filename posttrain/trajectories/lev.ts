/**
 * The Levenshtein surrogate of on-policy step reduction (docs/distill.md): a trajectory that moves in big jumps
 * between consecutive states needs few steps, so mean(1 / d_lev(state_i, state_i+1)) stands in for |tau|
 * as a smoother signal. States are the generated canvas with <|mask|> as an ordinary token.
 */
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { replayStates } from './record.ts';

/** Edit distance with unit-cost insertion, deletion and substitution. */
export function levenshtein(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = new Int32Array(b.length + 1);
  let cur = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1] + (ai === b[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j] + 1, cur[j - 1] + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

export interface LevSurrogate {
  /** mean over consecutive state pairs of 1 / d_lev; pairs with d = 0 are left out (no information). */
  meanInverse: number;
  /** mean d_lev over all consecutive pairs. */
  meanJump: number;
  /** Number of consecutive pairs. */
  pairs: number;
  /** Pairs whose states were equal (a step that changed nothing visible). */
  stalls: number;
}

/** The surrogate over a list of states (the first is where decoding started). */
export function levSurrogateOfStates(states: ArrayLike<number>[]): LevSurrogate {
  let inv = 0;
  let jump = 0;
  let moving = 0;
  let stalls = 0;
  for (let i = 1; i < states.length; i++) {
    const d = levenshtein(states[i - 1], states[i]);
    jump += d;
    if (d === 0) stalls++;
    else {
      inv += 1 / d;
      moving++;
    }
  }
  const pairs = Math.max(0, states.length - 1);
  return {
    meanInverse: moving > 0 ? inv / moving : 0,
    meanJump: pairs > 0 ? jump / pairs : 0,
    pairs,
    stalls,
  };
}

/** States of a recorded trajectory: the all-<|mask|> canvas, then the canvas after every step. */
export function trajectoryStates(row: TrajectoryRow, mask: number): Int32Array[] {
  const after = replayStates(row, mask);
  const length = after.length > 0 ? after[0].length : row.tokens.length;
  return [new Int32Array(length).fill(mask), ...after];
}

export function levSurrogate(row: TrajectoryRow, mask: number): LevSurrogate {
  return levSurrogateOfStates(trajectoryStates(row, mask));
}
