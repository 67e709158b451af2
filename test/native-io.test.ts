import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpointConfig, readSafetensorsHeader } from '../schemas/checkpoint.ts';
import { type StreamBatch, StreamWriter } from '../schemas/stream.ts';
import { builtNative } from './native-build.ts';

const bin = builtNative('sdt-native');
const dir = mkdtempSync(join(tmpdir(), 'sdt-native-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MODEL = {
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  mask_token_id: 3,
  del_token_id: 4,
  attention_mode: 'bidirectional',
};

function run(args: string[]) {
  const r = spawnSync(bin as string, args, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function batch(B: number, T: number, tag: string, seed: number, segments: boolean): StreamBatch {
  const n = B * T;
  const b: StreamBatch = {
    B,
    T,
    tag,
    inputIds: new Int32Array(n).map((_, i) => (i * 13 + seed) % 40),
    targetIds: new Int32Array(n).map((_, i) => (i % 4 === 0 ? -1 : (i * 5 + seed) % 40)),
    weights: new Float32Array(n).map((_, i) => 0.25 + ((i + seed) % 7) / 3),
  };
  if (segments) b.segmentIds = new Int32Array(n).map((_, i) => Math.floor(i / 6));
  return b;
}

const crcOf = (a: Int32Array | Float32Array) => crc32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** A minimal .npy writer (version 1.0), independent of the C++ one. */
function npy(descr: string, shape: number[], data: Int32Array | Float32Array): Buffer {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  h += ' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(h.length, 8);
  return Buffer.concat([
    head,
    Buffer.from(h, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

function readNpyF32(path: string): { shape: number[]; data: Float32Array } {
  const buf = readFileSync(path);
  expect(buf.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const hl = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + hl).toString('latin1');
  expect(header).toContain("'descr': '<f4'");
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const body = buf.subarray(10 + hl);
  return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

describe.skipIf(!bin)('sdt-native formats against the TypeScript side', () => {
  it('reads a stream written by schemas/stream.ts exactly (digest of every frame)', async () => {
    const path = join(dir, 'ts.stream');
    const frames = [
      { kind: 'train', b: batch(2, 6, 'mask', 1, false) },
      { kind: 'eval', b: batch(1, 12, 'val/python', 2, true) },
      { kind: 'train', b: batch(3, 5, 'edit', 3, true) },
    ] as const;
    const w = await StreamWriter.toFile(path, { firstTrainFrame: 9 });
    for (const f of frames) await (f.kind === 'train' ? w.writeTrain(f.b) : w.writeEval(f.b));
    await w.requestCheckpoint();
    await w.end();
    const r = run(['stream-check', path]);
    expect(r.code, r.stderr).toBe(0);
    const digest = JSON.parse(r.stdout);
    expect(digest).toMatchObject({
      version: 1,
      first_train_frame: 9,
      train_frames: 2,
      eval_frames: 1,
      control_frames: 2,
    });
    expect(digest.bytes).toBe(statSync(path).size);
    expect(digest.frames.map((f: { kind: string }) => f.kind)).toEqual([
      'train',
      'eval',
      'train',
      'checkpoint',
      'end',
    ]);
    frames.forEach((f, i) => {
      const d = digest.frames[i];
      expect(d).toMatchObject({ kind: f.kind, tag: f.b.tag, B: f.b.B, T: f.b.T });
      expect(d.input_crc).toBe(crcOf(f.b.inputIds));
      expect(d.target_crc).toBe(crcOf(f.b.targetIds));
      expect(d.weight_crc).toBe(crcOf(f.b.weights));
      expect(d.segment_crc).toBe(f.b.segmentIds ? crcOf(f.b.segmentIds) : null);
      expect(d.weight_sum).toBeCloseTo(
        Array.from(f.b.weights).reduce((s, x) => s + x, 0),
        9,
      );
    });
  });

  it('rejects a bad header and a truncated stream with the file name and what to run', async () => {
    const good = join(dir, 'good.stream');
    const w = await StreamWriter.toFile(good);
    await w.writeTrain(batch(2, 4, 'mask', 5, false));
    await w.end();
    const bytes = readFileSync(good);
    writeFileSync(join(dir, 'cut.stream'), bytes.subarray(0, bytes.length - 30));
    let r = run(['stream-check', join(dir, 'cut.stream')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cut\.stream: truncated frame.*frame 0.*sdt train/);
    const bad = Buffer.from(bytes);
    bad.write('NOTSDT!!', 0, 'latin1');
    writeFileSync(join(dir, 'bad.stream'), bad);
    r = run(['stream-check', join(dir, 'bad.stream')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/bad\.stream: not an sdt trainer stream.*npm run build:native/);
    r = run(['stream-check', '--frobnicate', good]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag --frobnicate');
  });

  it('writes a checkpoint whose safetensors header Node parses independently', async () => {
    writeFileSync(join(dir, 'model.json'), JSON.stringify(MODEL));
    writeFileSync(join(dir, 'tok.json'), '{"version": "1.0"}');
    const ckpt = join(dir, 'ckpt');
    const r = run([
      'init',
      '--config',
      join(dir, 'model.json'),
      '--out',
      ckpt,
      '--seed',
      '3',
      '--tokenizer',
      join(dir, 'tok.json'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = await readCheckpointConfig(ckpt);
    expect(cfg).toMatchObject({
      ...MODEL,
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      torch_dtype: 'float32',
    });
    expect(readFileSync(join(ckpt, 'tokenizer.json'), 'utf8')).toBe('{"version": "1.0"}');
    const path = join(ckpt, 'model.safetensors');
    const h = await readSafetensorsHeader(path);
    expect(h.dataStart % 8).toBe(0);
    const entries = Object.entries(h.tensors).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
    let end = 0;
    for (const [name, t] of entries) {
      expect(t.dtype, name).toBe('F32');
      expect(t.data_offsets[0], name).toBe(end);
      end = t.data_offsets[1];
      expect(end - t.data_offsets[0]).toBe(t.shape.reduce((a, b) => a * b, 1) * 4);
    }
    expect(statSync(path).size).toBe(h.dataStart + end);
    const hd = MODEL.hidden_size / MODEL.num_attention_heads;
    expect(h.tensors['model.embed_tokens.weight'].shape).toEqual([40, 16]);
    expect(h.tensors['model.layers.1.self_attn.k_proj.weight'].shape).toEqual([
      MODEL.num_key_value_heads * hd,
      16,
    ]);
    expect(h.tensors['model.layers.0.mlp.down_proj.weight'].shape).toEqual([16, 24]);
    expect(h.tensors['lm_head.weight'].shape).toEqual([40, 16]);
    // Norm weights start at 1 (Model::init), read straight from the data section.
    const norm = h.tensors['model.norm.weight'];
    const raw = readFileSync(path).subarray(
      h.dataStart + norm.data_offsets[0],
      h.dataStart + norm.data_offsets[1],
    );
    expect(
      Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length))),
    ).toEqual(new Array(16).fill(1));
  });

  it('forward writes logits whose weighted cross-entropy, computed here, equals the printed loss', () => {
    const ckpt = join(dir, 'ckpt');
    const B = 2;
    const T = 6;
    const tokens = new Int32Array(B * T).map((_, i) => (i % 3 === 0 ? 3 : (i * 7) % 40));
    const targets = new Int32Array(B * T).map((_, i) => (i % 3 === 0 ? (i * 11 + 5) % 40 : -1));
    targets[3] = 4; // a target that is not the mask
    const weights = new Float32Array(B * T).map((_, i) => 1 + (i % 4));
    writeFileSync(join(dir, 'tok.npy'), npy('<i4', [B, T], tokens));
    writeFileSync(join(dir, 'tgt.npy'), npy('<i4', [B, T], targets));
    writeFileSync(join(dir, 'w.npy'), npy('<f4', [B, T], weights));
    const out = join(dir, 'logits.npy');
    const r = run([
      'forward',
      '--ckpt',
      ckpt,
      '--tokens',
      join(dir, 'tok.npy'),
      '--targets',
      join(dir, 'tgt.npy'),
      '--weights',
      join(dir, 'w.npy'),
      '--out',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const { shape, data } = readNpyF32(out);
    expect(shape).toEqual([B, T, 40]);
    let ce = 0;
    let wsum = 0;
    for (let i = 0; i < B * T; i++) {
      const row = data.subarray(i * 40, (i + 1) * 40);
      expect(row[3]).toBe(Number.NEGATIVE_INFINITY);
      if (targets[i] < 0) continue;
      const finite = Array.from(row).filter((x) => Number.isFinite(x));
      const max = Math.max(...finite);
      const lse = max + Math.log(finite.reduce((s, x) => s + Math.exp(x - max), 0));
      ce += weights[i] * (lse - row[targets[i]]);
      wsum += weights[i];
    }
    expect(printed.weight_sum).toBeCloseTo(wsum, 6);
    expect(Math.abs(printed.loss - ce / wsum)).toBeLessThan(1e-5 * Math.max(1, ce / wsum));
    const bad = run([
      'forward',
      '--ckpt',
      ckpt,
      '--tokens',
      join(dir, 'tok.npy'),
      '--mode',
      'sideways',
      '--out',
      out,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--mode');
  });

  it('score gives per-row sums of target log-probabilities that match the forward logits', () => {
    const ckpt = join(dir, 'ckpt');
    const B = 3;
    const T = 5;
    const states = new Int32Array(B * T).map((_, i) => (i % 2 === 0 ? 3 : (i * 9) % 40));
    const targets = new Int32Array(B * T).map((_, i) => (i % 2 === 0 ? 5 + ((i * 7) % 30) : -1));
    const segments = new Int32Array(B * T).map((_, i) => (i % T === T - 1 ? -1 : 0)); // last column is padding
    targets[T - 1] = -1;
    writeFileSync(join(dir, 's.npy'), npy('<i4', [B, T], states));
    writeFileSync(join(dir, 't.npy'), npy('<i4', [B, T], targets));
    writeFileSync(join(dir, 'g.npy'), npy('<i4', [B, T], segments));
    const common = ['--ckpt', ckpt, '--segments', join(dir, 'g.npy')];
    const s = run([
      'score',
      ...common,
      '--states',
      join(dir, 's.npy'),
      '--targets',
      join(dir, 't.npy'),
      '--out',
      join(dir, 'lp.npy'),
    ]);
    expect(s.code, s.stderr).toBe(0);
    const f = run(['forward', ...common, '--tokens', join(dir, 's.npy'), '--out', join(dir, 'sl.npy')]);
    expect(f.code, f.stderr).toBe(0);
    const lp = readNpyF32(join(dir, 'lp.npy'));
    expect(lp.shape).toEqual([B]);
    const { data } = readNpyF32(join(dir, 'sl.npy'));
    for (let b = 0; b < B; b++) {
      let want = 0;
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (targets[i] < 0) continue;
        const row = Array.from(data.subarray(i * 40, (i + 1) * 40)).filter((x) => Number.isFinite(x));
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0));
        want += data[i * 40 + targets[i]] - lse;
      }
      expect(Math.abs(lp.data[b] - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
    }
  });
});
