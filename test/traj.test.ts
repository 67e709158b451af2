/**
 * Trajectory files: Arrow round trip (scores included), replay to the final tokens, pictures; and a
 * trajectory recorded by the real sampler replays to the tokens it returned.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../engine/client.ts';
import {
  completionToRow,
  readTrajectories,
  replayFinal,
  replayStates,
  writeTrajectories,
} from '../posttrain/trajectories/record.ts';
import { commitStepOf, trajectoryHtml, trajectorySvg } from '../posttrain/trajectories/show.ts';
import type { TrajectoryRow } from '../schemas/trajectory.ts';
import { builtNative } from './native-build.ts';

const MASK = 3;
const dir = mkdtempSync(join(tmpdir(), 'sdt-traj-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A random decode: positions of each block committed in random order, some remasked and recommitted. */
function syntheticRow(seed: number, length: number): TrajectoryRow {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const tokens = Int32Array.from({ length }, () => 10 + Math.floor(rand() * 50));
  const steps: TrajectoryRow['steps'] = [];
  for (let b = 0; b * 4 < length; b++) {
    const todo = [];
    for (let p = b * 4; p < Math.min(length, b * 4 + 4); p++) todo.push(p);
    let k = 0;
    while (todo.length) {
      const take = todo.splice(0, 1 + Math.floor(rand() * todo.length));
      if (rand() < 0.3) {
        // A wrong guess first, taken back by a remask, then the final token.
        steps.push({
          block: b,
          step: k++,
          kind: 'commit',
          positions: take,
          tokens: take.map(() => 7),
          confidences: take.map(() => 0.5),
        });
        steps.push({
          block: b,
          step: k,
          kind: 'remask',
          positions: take,
          tokens: take.map(() => MASK),
          confidences: take.map(() => Math.fround(0.1)),
        });
      }
      steps.push({
        block: b,
        step: k++,
        kind: 'commit',
        positions: take,
        tokens: take.map((p) => tokens[p]),
        confidences: take.map(() => Math.fround(rand())),
      });
    }
  }
  return {
    id: `row-${seed}`,
    checkpoint: 'ckpt/x',
    prompt: Int32Array.from([5, 6, 7]),
    tokens,
    text: 'x'.repeat(length),
    eos: seed % 2 === 0,
    steps,
    forwardPasses: steps.length + 2,
    settings: JSON.stringify({ block: 4, threshold: 0.9 }),
    elbo: seed === 1 ? -12.5 : null,
    levSurrogate: seed === 1 ? 0.25 : null,
    tau: seed === 1 ? steps.length : null,
    verifier: null,
  };
}

describe('trajectory files', () => {
  it('round-trip through Arrow, scores and nulls included', async () => {
    const rows = [syntheticRow(1, 11), syntheticRow(2, 6), syntheticRow(3, 0)];
    const path = join(dir, 'rt.arrow');
    await writeTrajectories(path, rows);
    const back = await readTrajectories(path);
    expect(back).toEqual(rows);
  });

  it('replay to the final tokens, remasks included', () => {
    for (let seed = 1; seed < 20; seed++) {
      const row = syntheticRow(seed, 3 + (seed % 9));
      expect(Array.from(replayFinal(row, MASK))).toEqual(Array.from(row.tokens));
      const states = replayStates(row, MASK);
      expect(states).toHaveLength(row.steps.length);
      // Masked positions only decrease except where a remask step says so.
      for (let k = 1; k < states.length; k++) {
        const before = states[k - 1].filter((t) => t === MASK).length;
        const after = states[k].filter((t) => t === MASK).length;
        if (row.steps[k].kind === 'remask') expect(after).toBeGreaterThan(before);
        else expect(after).toBeLessThanOrEqual(before);
      }
    }
  });

  it('rejects files that are not trajectories', async () => {
    const path = join(dir, 'junk.arrow');
    writeFileSync(path, 'not arrow');
    await expect(readTrajectories(path)).rejects.toThrow(/junk\.arrow.*not an Arrow IPC file/);
  });

  it('draw one box per token coloured by its commit step', () => {
    const row = syntheticRow(4, 9);
    const svg = trajectorySvg(row, (id) => `t${id}`);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect /g)).toHaveLength(9);
    const at = commitStepOf(row);
    // The last commit step of each position is the one named in its tooltip.
    for (let p = 0; p < 9; p++)
      expect(svg).toContain(`pos ${p} token ${row.tokens[p]} block ${row.steps[at[p]].block}`);
    // Control characters a model may emit never reach the XML.
    expect(trajectorySvg(row, () => '\x1b[2J\x00')).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
    const html = trajectoryHtml(row, (id) => `t${id}`, MASK);
    expect(html).toContain('<input id="step" type="range"');
    expect(html).toContain(`max="${row.steps.length - 1}"`);
  });
});

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
describe.skipIf(bin === '')('trajectories from the sampler', () => {
  it('record, write, read and replay to the returned tokens', async () => {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 80,
        attention_mode: 'bidirectional',
        block_size: 8,
        mask_token_id: 3,
        eos_token_id: 2,
      }),
    );
    const client = await EngineClient.start({ randomInit: { seed: 2, config }, binary: bin });
    try {
      const rows: TrajectoryRow[] = [];
      for (const rule of ['threshold', 'fixed', 'remask'] as const) {
        const settings = {
          maxNew: 20,
          block: 8,
          rule,
          threshold: 0.02,
          tokensPerStep: 3,
          stepsPerBlock: 5,
          trajectory: true,
          eos: -1,
        };
        const done = await client.generateTokens([[5, 6, 7], [9]], settings);
        for (const c of done) rows.push(completionToRow(`${rule}`, client.info.source, c, settings));
      }
      const path = join(dir, 'real.arrow');
      await writeTrajectories(path, rows);
      const back = await readTrajectories(path);
      expect(back).toHaveLength(6);
      for (const row of back) {
        expect(row.tokens.length).toBe(20);
        expect(Array.from(replayFinal(row, MASK))).toEqual(Array.from(row.tokens));
        expect(JSON.parse(row.settings).block).toBe(8);
      }
      // The fixed rule commits at most 3 per step.
      expect(
        back.filter((r) => r.id === 'fixed').every((r) => r.steps.every((s) => s.positions.length <= 3)),
      ).toBe(true);
      expect(readFileSync(path).length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });
});
