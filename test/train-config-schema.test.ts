/**
 * The native train config (TRAIN.json) has one contract: schemas/checkpoint.ts trainConfigProblem accepts and
 * rejects the same documents as `sdt-native` (train_config_from_json, through `sdt-native init --config`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainConfigProblem } from '../schemas/checkpoint.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';

const bin = builtNative() ?? '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-trainschema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = tinyModelConfig();
const base = { model, total_steps: 10 };
const docs: [string, Record<string, unknown>][] = [
  ['minimal', base],
  [
    'every field',
    {
      ...base,
      micro_batches: 2,
      checkpoint_every: 5,
      keep_checkpoints: 2,
      seed: 3,
      threads: 1,
      max_nonfinite_steps: 3,
      optimizer: { beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0, grad_clip: 1 },
      schedule: { lr: 1e-3, min_lr: 1e-4, warmup_steps: 10 },
    },
  ],
  ['unknown field', { ...base, epochs: 3 }],
  ['no total_steps', { model }],
  ['no model', { total_steps: 10 }],
  ['total_steps 0', { ...base, total_steps: 0 }],
  ['total_steps 1.5', { ...base, total_steps: 1.5 }],
  ['seed -1', { ...base, seed: -1 }],
  ['keep_checkpoints 0', { ...base, keep_checkpoints: 0 }],
  ['optimizer unknown field', { ...base, optimizer: { momentum: 0.9 } }],
  ['beta1 1', { ...base, optimizer: { beta1: 1 } }],
  ['eps 0', { ...base, optimizer: { eps: 0 } }],
  ['optimizer not an object', { ...base, optimizer: 3 }],
  ['lr below the default min_lr', { ...base, schedule: { lr: 1e-5 } }],
  ['warmup 2.5', { ...base, schedule: { warmup_steps: 2.5 } }],
  ['schedule unknown field', { ...base, schedule: { decay: 'cosine' } }],
  ['tokenizer not a string', { ...base, tokenizer: 5 }],
  [
    'model with Hugging Face extras',
    { ...base, model: { ...model, architectures: ['LlamaForCausalLM'], hidden_act: 'silu' } },
  ],
  ['hidden not divisible by heads', { ...base, model: { ...model, hidden_size: 30 } }],
  ['odd head_dim', { ...base, model: { ...model, hidden_size: 12 } }],
  ['mask outside the vocabulary', { ...base, model: { ...model, mask_token_id: 40 } }],
  ['pad -2', { ...base, model: { ...model, pad_token_id: -2 } }],
  ['pad null', { ...base, model: { ...model, pad_token_id: null } }],
  ['kv heads not dividing heads', { ...base, model: { ...model, num_key_value_heads: 3 } }],
  ['block_size 0', { ...base, model: { ...model, block_size: 0 } }],
  ['attention_mode sideways', { ...base, model: { ...model, attention_mode: 'sideways' } }],
  ['vocab_size 2.5', { ...base, model: { ...model, vocab_size: 2.5 } }],
  ['tie_word_embeddings "yes"', { ...base, model: { ...model, tie_word_embeddings: 'yes' } }],
];

describe.skipIf(!bin)('TRAIN.json contract', () => {
  it('TypeScript and sdt-native accept and reject the same documents', () => {
    let accepted = 0;
    for (const [i, [name, doc]] of docs.entries()) {
      const path = join(dir, `train-${i}.json`);
      writeFileSync(path, JSON.stringify(doc));
      const r = spawnSync(bin, ['init', '--config', path, '--out', join(dir, `ckpt-${i}`)], {
        encoding: 'utf8',
      });
      const ts = trainConfigProblem(doc);
      expect(
        r.status === 0,
        `${name}: sdt-native exit ${r.status} ${r.stderr.trim()}; TypeScript: ${ts}`,
      ).toBe(ts === null);
      if (ts === null) accepted++;
    }
    // Both verdicts occur, so the comparison can fail either way.
    expect(accepted).toBeGreaterThan(2);
    expect(accepted).toBeLessThan(docs.length - 10);
  });
});
