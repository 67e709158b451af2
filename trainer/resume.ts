/**
 * Where a stopped run continues: the latest complete checkpoint of RUN/checkpoints (schemas/checkpoint.ts)
 * and the feed position saved in its trainer_state.json.
 */
import { latestCheckpoint, readTrainerState } from '../schemas/checkpoint.ts';

export interface ResumePoint {
  path: string;
  step: number;
  /** Train frames consumed: the feed restarts at this frame. */
  streamPosition: number;
  tokensSeen: number;
}

export function hasCheckpoints(runDir: string): boolean {
  return latestCheckpoint(runDir) !== undefined;
}

export async function resumePoint(runDir: string): Promise<ResumePoint | undefined> {
  const last = latestCheckpoint(runDir);
  if (!last) return undefined;
  const state = await readTrainerState(last.path);
  return {
    path: last.path,
    step: state.step,
    streamPosition: state.stream_position,
    tokensSeen: state.tokens_seen,
  };
}
