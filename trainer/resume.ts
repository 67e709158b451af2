/**
 * Where a stopped run continues: the latest complete checkpoint of RUN/checkpoints (schemas/checkpoint.ts)
 * and the feed position saved in its trainer_state.json.
 */
import { IntegrityError } from '../common/integrity.ts';
import {
  latestCheckpoint,
  listCheckpoints,
  readTrainerState,
  verifyCheckpoint,
} from '../schemas/checkpoint.ts';

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
  try {
    await verifyCheckpoint(last.path);
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    // Rerunning the same command would fail the same way: name the newest intact checkpoint instead.
    let intact: string | undefined;
    for (const c of listCheckpoints(runDir).reverse().slice(1)) {
      if (
        await verifyCheckpoint(c.path).then(
          () => true,
          () => false,
        )
      ) {
        intact = c.path;
        break;
      }
    }
    throw new IntegrityError(
      `${err.message.replace(/;[^;]*$/, '')}; cannot resume from ${last.path}. ` +
        (intact
          ? `Move it aside (mv ${last.path} ${last.path}.damaged) and rerun \`sdt train --resume ${runDir}\` to continue from ${intact}, the newest intact checkpoint.`
          : 'No earlier checkpoint of this run is intact: start the run again without --resume.'),
    );
  }
  const state = await readTrainerState(last.path);
  return {
    path: last.path,
    step: state.step,
    streamPosition: state.stream_position,
    tokensSeen: state.tokens_seen,
  };
}
