/**
 * Trajectory files (schemas/trajectory.ts): writing, reading and replaying Arrow rows.
 */
import { readFile } from 'node:fs/promises';
import {
  Bool,
  Field,
  Float32,
  Float64,
  Int32,
  List,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { checkDigest, withDigest } from '../../common/arrow-digest.ts';
import { UserError } from '../../common/errors.ts';
import { atomicWriteFile } from '../../common/fs.ts';
import type { Completion } from '../../engine/client.ts';
import { settingsToWire } from '../../schemas/engine.ts';
import {
  STEP_KINDS,
  type StepKind,
  TRAJECTORY_COLUMNS,
  TRAJECTORY_SCHEMA_VERSION,
  type TrajectoryRow,
  type TrajectoryStep,
} from '../../schemas/trajectory.ts';

const listOf = (t: Int32 | Float32 | Utf8) => new List(new Field('item', t, true));

export function trajectoriesToTable(rows: TrajectoryRow[]): Table {
  const flat = rows.map((r) => {
    const offsets = [0];
    const positions: number[] = [];
    const tokens: number[] = [];
    const conf: number[] = [];
    for (const s of r.steps) {
      positions.push(...s.positions);
      tokens.push(...s.tokens);
      conf.push(...s.confidences);
      offsets.push(positions.length);
    }
    return { offsets, positions, tokens, conf };
  });
  const cols: Record<string, Vector> = {
    schema_version: vectorFromArray(
      rows.map(() => TRAJECTORY_SCHEMA_VERSION),
      new Int32(),
    ),
    id: vectorFromArray(
      rows.map((r) => r.id),
      new Utf8(),
    ),
    checkpoint: vectorFromArray(
      rows.map((r) => r.checkpoint),
      new Utf8(),
    ),
    prompt: vectorFromArray(
      rows.map((r) => Array.from(r.prompt)),
      listOf(new Int32()),
    ),
    tokens: vectorFromArray(
      rows.map((r) => Array.from(r.tokens)),
      listOf(new Int32()),
    ),
    text: vectorFromArray(
      rows.map((r) => r.text),
      new Utf8(),
    ),
    eos: vectorFromArray(
      rows.map((r) => r.eos),
      new Bool(),
    ),
    forward_passes: vectorFromArray(
      rows.map((r) => r.forwardPasses),
      new Int32(),
    ),
    settings: vectorFromArray(
      rows.map((r) => r.settings),
      new Utf8(),
    ),
    step_block: vectorFromArray(
      rows.map((r) => r.steps.map((s) => s.block)),
      listOf(new Int32()),
    ),
    step_index: vectorFromArray(
      rows.map((r) => r.steps.map((s) => s.step)),
      listOf(new Int32()),
    ),
    step_kind: vectorFromArray(
      rows.map((r) => r.steps.map((s) => s.kind)),
      listOf(new Utf8()),
    ),
    step_offsets: vectorFromArray(
      flat.map((f) => f.offsets),
      listOf(new Int32()),
    ),
    positions: vectorFromArray(
      flat.map((f) => f.positions),
      listOf(new Int32()),
    ),
    step_tokens: vectorFromArray(
      flat.map((f) => f.tokens),
      listOf(new Int32()),
    ),
    confidences: vectorFromArray(
      flat.map((f) => f.conf),
      listOf(new Float32()),
    ),
    elbo: vectorFromArray(
      rows.map((r) => r.elbo),
      new Float64(),
    ),
    lev_surrogate: vectorFromArray(
      rows.map((r) => r.levSurrogate),
      new Float64(),
    ),
    tau: vectorFromArray(
      rows.map((r) => r.tau),
      new Int32(),
    ),
    verifier: vectorFromArray(
      rows.map((r) => r.verifier),
      new Float64(),
    ),
  };
  return new Table(cols);
}

/** Writes rows as one Arrow IPC file, atomically. */
export async function writeTrajectories(path: string, rows: TrajectoryRow[]): Promise<void> {
  await atomicWriteFile(path, tableToIPC(withDigest(trajectoriesToTable(rows)), 'file'));
}

function numbers(v: unknown): number[] {
  if (v == null) return [];
  return Array.from((v as { toArray(): ArrayLike<number> }).toArray());
}

function strings(v: unknown): string[] {
  if (v == null) return [];
  return Array.from(v as Iterable<string>);
}

export async function readTrajectories(path: string): Promise<TrajectoryRow[]> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new UserError(`cannot read trajectory file ${path}: ${(err as Error).message}`);
  }
  let table: Table;
  try {
    table = tableFromIPC(buf);
  } catch (err) {
    throw new UserError(
      `${path} is not an Arrow IPC file (${(err as Error).message}); write one with \`sdt sample --record-trajectory ${path}\`.`,
    );
  }
  checkDigest(
    path,
    table,
    'regenerate it (sdt traj generate / sdt sample --record-trajectory / sdt traj score) or restore a copy.',
  );
  for (const c of TRAJECTORY_COLUMNS) {
    if (!table.getChild(c)) {
      throw new UserError(
        `${path}: column "${c}" is missing; this is not a trajectory file (schema version ${TRAJECTORY_SCHEMA_VERSION}).`,
      );
    }
  }
  const col = (name: string) => table.getChild(name)!;
  const rows: TrajectoryRow[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const version = col('schema_version').get(i) as number;
    if (version !== TRAJECTORY_SCHEMA_VERSION) {
      throw new UserError(
        `${path} row ${i}: trajectory schema version ${version}, this sdt reads ${TRAJECTORY_SCHEMA_VERSION}; re-record it.`,
      );
    }
    const offsets = numbers(col('step_offsets').get(i));
    const blocks = numbers(col('step_block').get(i));
    const index = numbers(col('step_index').get(i));
    const kinds = strings(col('step_kind').get(i));
    const positions = numbers(col('positions').get(i));
    const tokens = numbers(col('step_tokens').get(i));
    const conf = numbers(col('confidences').get(i));
    const steps: TrajectoryStep[] = blocks.map((block, s) => {
      const kind = kinds[s] as StepKind;
      if (!STEP_KINDS.includes(kind))
        throw new UserError(`${path} row ${i}: unknown step kind "${kinds[s]}"`);
      const [a, b] = [offsets[s], offsets[s + 1]];
      return {
        block,
        step: index[s],
        kind,
        positions: positions.slice(a, b),
        tokens: tokens.slice(a, b),
        confidences: conf.slice(a, b),
      };
    });
    const nullable = (name: string) => {
      const v = col(name).get(i);
      return v == null ? null : Number(v);
    };
    rows.push({
      id: col('id').get(i) as string,
      checkpoint: col('checkpoint').get(i) as string,
      prompt: Int32Array.from(numbers(col('prompt').get(i))),
      tokens: Int32Array.from(numbers(col('tokens').get(i))),
      text: col('text').get(i) as string,
      eos: Boolean(col('eos').get(i)),
      forwardPasses: col('forward_passes').get(i) as number,
      settings: col('settings').get(i) as string,
      steps,
      elbo: nullable('elbo'),
      levSurrogate: nullable('lev_surrogate'),
      tau: nullable('tau'),
      verifier: nullable('verifier'),
    });
  }
  return rows;
}

/**
 * Canvas states after each step: state[k][p] is the token at generated position p after step k, or
 * `mask` while it is still masked. The last state, cut to the final length, equals the final tokens.
 */
export function replayStates(row: TrajectoryRow, mask: number): Int32Array[] {
  let length = row.tokens.length;
  for (const s of row.steps) for (const p of s.positions) length = Math.max(length, p + 1);
  const state = new Int32Array(length).fill(mask);
  const states: Int32Array[] = [];
  for (const s of row.steps) {
    for (let k = 0; k < s.positions.length; k++) state[s.positions[k]] = s.tokens[k];
    states.push(state.slice());
  }
  return states;
}

/** The final tokens the steps produce (the replay's last canvas up to the recorded length). */
export function replayFinal(row: TrajectoryRow, mask: number): Int32Array {
  const states = replayStates(row, mask);
  const last = states.length > 0 ? states[states.length - 1] : new Int32Array(0);
  return last.slice(0, row.tokens.length);
}

/** One generation as a trajectory row, scores unset (the scorer fills them). */
export function completionToRow(
  id: string,
  checkpoint: string,
  c: Completion,
  settings: object,
): TrajectoryRow {
  return {
    id,
    checkpoint,
    prompt: c.promptTokens,
    tokens: c.tokens,
    text: c.text,
    eos: c.eos,
    steps: (c.trajectory ?? []).map((s) => ({ ...s })),
    forwardPasses: c.forwardPasses,
    settings: JSON.stringify(settingsToWire(settings)),
    elbo: null,
    levSurrogate: null,
    tau: null,
    verifier: null,
  };
}
