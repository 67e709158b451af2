/**
 * Where a stopped run continues: the latest complete checkpoint of RUN/checkpoints (a step-NNNNNN directory
 * holding COMPLETE, which sdt-native writes last) and the feed position saved in its trainer_state.json.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../common/errors.ts';

export interface ResumePoint {
  path: string;
  step: number;
  /** Train frames consumed: the feed restarts at this frame. */
  streamPosition: number;
  tokensSeen: number;
}

export function latestCheckpoint(runDir: string): ResumePoint | undefined {
  const dir = join(runDir, 'checkpoints');
  if (!existsSync(dir)) return undefined;
  const complete = readdirSync(dir)
    .filter((name) => /^step-\d+$/.test(name) && existsSync(join(dir, name, 'COMPLETE')))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const last = complete.at(-1);
  if (!last) return undefined;
  const path = join(dir, last);
  const statePath = join(path, 'trainer_state.json');
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(
      `${statePath}: cannot read the trainer state (${(err as Error).message}); the checkpoint is damaged.`,
    );
  }
  for (const k of ['step', 'stream_position', 'tokens_seen']) {
    if (typeof state[k] !== 'number')
      throw new UserError(`${statePath}: field ${k} is missing or not a number; the checkpoint is damaged.`);
  }
  return {
    path,
    step: state.step as number,
    streamPosition: state.stream_position as number,
    tokensSeen: state.tokens_seen as number,
  };
}
