import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandArgs } from '../common/cli.ts';
import {
  applyFlags,
  configOptions,
  configProblems,
  defaultConfig,
  explicitFlags,
  loadConfigFile,
  mergeConfig,
  PRESETS,
  totalSteps,
} from '../trainer/config.ts';
import { countParameters, trainFlopsPerToken } from '../trainer/model-size.ts';

async function writeConfig(obj: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sdt-train-config-'));
  const path = join(dir, 'train.json');
  await writeFile(path, JSON.stringify(obj));
  return path;
}

describe('train config', () => {
  it('defaults are valid', () => {
    expect(configProblems(defaultConfig(), 'defaults')).toEqual([]);
  });

  it('names the field and the value at fault', async () => {
    const path = await writeConfig({ model: { hidden_size: 100, num_attention_heads: 3 } });
    await expect(loadConfigFile(path)).rejects.toThrow(
      `${path}: model.hidden_size must be a positive multiple of num_attention_heads (got 100 with 3 heads)`,
    );
    const neg = await writeConfig({ schedule: { lr: -1 } });
    await expect(loadConfigFile(neg)).rejects.toThrow(`${neg}: schedule.lr must be > 0 (got -1)`);
    const typo = await writeConfig({ schedule: { learning_rate: 1 } });
    await expect(loadConfigFile(typo)).rejects.toThrow('unknown field "schedule.learning_rate"');
    const kind = await writeConfig({ batch: { batch_size: 'eight' } });
    await expect(loadConfigFile(kind)).rejects.toThrow('batch.batch_size must be a number (got "eight")');
    const div = await writeConfig({ batch: { batch_size: 6, micro_batches: 4 } });
    await expect(loadConfigFile(div)).rejects.toThrow(
      'batch.batch_size must be a multiple of batch.micro_batches',
    );
    const choice = await writeConfig({ objective: 'gpt' });
    await expect(loadConfigFile(choice)).rejects.toThrow(
      'objective must be one of diffusion, ar (got "gpt")',
    );
  });

  it('presets fill the model and explicit fields override them', () => {
    const cfg = mergeConfig({ model: { preset: 'tiny', num_hidden_layers: 3 } }, 'x.json');
    expect(cfg.model.hidden_size).toBe(PRESETS.tiny.hidden_size);
    expect(cfg.model.num_hidden_layers).toBe(3);
  });

  it('flags override the file; unset flags do not', () => {
    const spec = { name: 'train', summary: '', options: configOptions(), run: async () => 0 };
    const base = mergeConfig({ schedule: { lr: 0.01 }, model: { preset: 'tiny' } }, 'x.json');
    const { opts } = parseCommandArgs(spec, ['--steps', '7', '--model', 'small', '--layers', '5']);
    const cfg = applyFlags(base, opts, explicitFlags(opts));
    expect(cfg.steps).toBe(7);
    expect(cfg.schedule.lr).toBe(0.01);
    expect(cfg.model.hidden_size).toBe(PRESETS.small.hidden_size);
    expect(cfg.model.num_hidden_layers).toBe(5);
  });

  it('derives steps from tokens', () => {
    const cfg = { ...defaultConfig(), steps: 0, tokens: 10_000 };
    cfg.batch = { batch_size: 4, micro_batches: 1 };
    cfg.data = { ...cfg.data, seq_len: 100 };
    expect(totalSteps(cfg)).toBe(25);
  });

  it('counts parameters like an explicit enumeration of the Llama tensors', () => {
    const m = { ...PRESETS.small, tie_word_embeddings: false };
    const V = 1000;
    const h = m.hidden_size;
    const kv = (m.num_key_value_heads * h) / m.num_attention_heads;
    const shapes: number[][] = [[V, h]];
    for (let l = 0; l < m.num_hidden_layers; l++) {
      shapes.push([h], [h, h], [kv, h], [kv, h], [h, h], [h]);
      shapes.push([m.intermediate_size, h], [m.intermediate_size, h], [h, m.intermediate_size]);
    }
    shapes.push([h], [V, h]);
    const expected = shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
    expect(countParameters(m, V).total).toBe(expected);
    expect(countParameters({ ...m, tie_word_embeddings: true }, V).total).toBe(expected - V * h);
    // 6N + attention: the attention term grows linearly with the sequence length.
    const f1 = trainFlopsPerToken(m, V, 128);
    const f2 = trainFlopsPerToken(m, V, 256);
    expect(f2 - f1).toBe(12 * m.num_hidden_layers * 128 * h);
  });
});

describe('default configs', () => {
  it('every data/configs/*.json is a valid train config', async () => {
    const { readdirSync } = await import('node:fs');
    const dir = join(import.meta.dirname, '..', 'data', 'configs');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toContain('demo.json');
    for (const f of files) await expect(loadConfigFile(join(dir, f))).resolves.toBeTruthy();
  });
});
