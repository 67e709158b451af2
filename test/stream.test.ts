import { describe, expect, it } from 'vitest';
import {
  encodeBatchFrame,
  encodeControlFrame,
  encodeStreamHeader,
  type StreamBatch,
  StreamDecoder,
  type StreamFrame,
} from '../schemas/stream.ts';

function batch(B: number, T: number, tag: string, seed: number, segments = false): StreamBatch {
  const n = B * T;
  const inputIds = new Int32Array(n).map((_, i) => (i * 7 + seed) % 50);
  const targetIds = new Int32Array(n).map((_, i) => (i % 3 === 0 ? -1 : (i + seed) % 50));
  const weights = new Float32Array(n).map((_, i) => (i % 3 === 0 ? 0 : 1 / (1 + (i % 5))));
  const b: StreamBatch = { B, T, tag, inputIds, targetIds, weights };
  if (segments) b.segmentIds = new Int32Array(n).map((_, i) => Math.floor(i / 5) - 1);
  return b;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('trainer stream (TS writer and reader)', () => {
  const frames = [
    encodeBatchFrame('train', batch(2, 5, 'mask', 1)),
    encodeBatchFrame('eval', batch(1, 7, 'val/π', 2, true)),
    encodeControlFrame('checkpoint'),
    encodeBatchFrame('train', batch(3, 4, 'edit', 3, true)),
    encodeControlFrame('end'),
  ];
  const bytes = concat([encodeStreamHeader({ firstTrainFrame: 42 }), ...frames]);

  it('round-trips every field, however the bytes are chunked', () => {
    for (const chunk of [1, 7, 1000, bytes.length]) {
      const dec = new StreamDecoder('mem');
      const got: StreamFrame[] = [];
      for (let i = 0; i < bytes.length; i += chunk) got.push(...dec.push(bytes.subarray(i, i + chunk)));
      dec.finish();
      expect(dec.header).toEqual({ version: 1, firstTrainFrame: 42 });
      expect(got.map((f) => f.kind)).toEqual(['train', 'eval', 'checkpoint', 'train', 'end']);
      const e = got[1] as { kind: 'eval'; batch: StreamBatch };
      const want = batch(1, 7, 'val/π', 2, true);
      expect(e.batch.tag).toBe('val/π');
      expect(Array.from(e.batch.inputIds)).toEqual(Array.from(want.inputIds));
      expect(Array.from(e.batch.targetIds)).toEqual(Array.from(want.targetIds));
      expect(Array.from(e.batch.weights)).toEqual(Array.from(want.weights));
      expect(Array.from(e.batch.segmentIds ?? [])).toEqual(Array.from(want.segmentIds ?? []));
      expect((got[0] as { batch: StreamBatch }).batch.segmentIds).toBeUndefined();
    }
  });

  it('rejects a bad magic, a newer version, truncation and a flipped bit, naming the source', () => {
    const bad = bytes.slice();
    bad[1] = 0x58;
    expect(() => new StreamDecoder('x.bin').push(bad)).toThrow(
      /x\.bin: not an sdt trainer stream.*sdt train/,
    );
    const v2 = bytes.slice();
    v2[8] = 2;
    expect(() => new StreamDecoder('x.bin').push(v2)).toThrow(/version 2/);
    const cut = new StreamDecoder('cut.bin');
    cut.push(bytes.subarray(0, bytes.length - 20));
    expect(() => cut.finish()).toThrow(/cut\.bin: truncated frame/);
    const flip = bytes.slice();
    flip[24 + 12 + 17] ^= 4;
    expect(() => new StreamDecoder('f.bin').push(flip)).toThrow(/CRC-32 mismatch/);
    expect(() => new StreamDecoder('e.bin').finish()).toThrow(/empty input/);
  });

  it('refuses a batch whose arrays do not hold B*T elements', () => {
    const b = batch(2, 3, 'mask', 1);
    b.weights = new Float32Array(5);
    expect(() => encodeBatchFrame('train', b)).toThrow(/weights has 5 elements, B\*T is 6/);
  });
});
