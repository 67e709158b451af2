/**
 * Frames of the trainer stream (spec: schemas/stream.md; reader: native/src/io/stream.cpp) for the feed.
 * Header: "SDTSTRM\0", u32 version 1, u32 flags 0, u64 first train frame. Frame: u32 kind, u32 payload
 * length, u32 CRC-32 of (kind, length, payload), then the payload. Batch payload: u32 B, u32 T, u32 flags
 * (1: segment ids follow), u32 tag length, the tag padded to 4 bytes, then input i32[B*T], target i32[B*T],
 * weight f32[B*T], segment i32[B*T]. Little-endian throughout.
 */
import { crc32 } from 'node:zlib';
import type { MicroBatch } from './batch.ts';
import type { TrainConfig } from './config.ts';
import { stageAt } from './curriculum.ts';

const MAGIC = Buffer.from('SDTSTRM\0', 'latin1');
const VERSION = 1;
const KIND = { train: 1, eval: 2, checkpoint: 3, end: 4 } as const;
const HAS_SEGMENTS = 1;

export function encodeHeader(firstTrainFrame: number): Uint8Array {
  const b = Buffer.alloc(24);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(VERSION, 8);
  b.writeUInt32LE(0, 12);
  b.writeBigUInt64LE(BigInt(firstTrainFrame), 16);
  return b;
}

function frame(kind: number, payload: Uint8Array): Uint8Array {
  const out = Buffer.alloc(12 + payload.length);
  out.writeUInt32LE(kind, 0);
  out.writeUInt32LE(payload.length, 4);
  out.set(payload, 12);
  out.writeUInt32LE(crc32(payload, crc32(out.subarray(0, 8))), 8);
  return out;
}

function batchPayload(b: MicroBatch, tag: string): Uint8Array {
  const n = b.B * b.T;
  const tagBytes = Buffer.from(tag, 'utf8');
  const tagPadded = (tagBytes.length + 3) & ~3;
  const out = Buffer.alloc(16 + tagPadded + 16 * n);
  out.writeUInt32LE(b.B, 0);
  out.writeUInt32LE(b.T, 4);
  out.writeUInt32LE(HAS_SEGMENTS, 8);
  out.writeUInt32LE(tagBytes.length, 12);
  tagBytes.copy(out, 16);
  let o = 16 + tagPadded;
  for (const arr of [b.input, b.target, b.weight, b.segment]) {
    out.set(new Uint8Array(arr.buffer, arr.byteOffset, n * 4), o);
    o += n * 4;
  }
  return out;
}

/** A train frame tagged with the curriculum stage of its step. */
export function encodeTrain(b: MicroBatch, step: number, cfg: TrainConfig): Uint8Array {
  return frame(KIND.train, batchPayload(b, stageAt(cfg, step)));
}

export function encodeEval(b: MicroBatch, group: string): Uint8Array {
  return frame(KIND.eval, batchPayload(b, group));
}

export function encodeEnd(): Uint8Array {
  return frame(KIND.end, new Uint8Array(0));
}
