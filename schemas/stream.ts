/**
 * The trainer stream (spec: schemas/stream.md; C++ side: native/src/io/stream.h): how `trainer/`
 * feeds batches to `sdt-native train --stream -`. A 24-byte header, then frames, each with its
 * kind, payload length and a CRC-32 over kind, length and payload. Little-endian throughout.
 */

import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { UserError } from '../common/errors.ts';
import { AtomicWriteStream } from '../common/fs.ts';

export const STREAM_MAGIC = new Uint8Array([0x53, 0x44, 0x54, 0x53, 0x54, 0x52, 0x4d, 0x00]); // "SDTSTRM\0"
export const STREAM_VERSION = 1;
export const STREAM_HEADER_BYTES = 24;
export const FRAME_HEADER_BYTES = 12;
/** A frame longer than this is treated as corruption. */
export const MAX_FRAME_PAYLOAD = 1 << 30;
const BATCH_HAS_SEGMENTS = 1;

export const FRAME_KINDS = { train: 1, eval: 2, checkpoint: 3, end: 4 } as const;
export type FrameKind = keyof typeof FRAME_KINDS;
const KIND_BY_CODE: Record<number, FrameKind> = { 1: 'train', 2: 'eval', 3: 'checkpoint', 4: 'end' };

export interface StreamHeader {
  version: number;
  /**
   * Train frames the run consumed before this stream's first train frame: 0 for a new run; a feeder
   * resuming a run writes the checkpoint's `stream_position` here and starts at that frame.
   */
  firstTrainFrame: number;
}

/** One batch: B rows of T tokens, flattened row-major (index b * T + t). */
export interface StreamBatch {
  B: number;
  T: number;
  /** Objective of a train batch ("mask", "edit") or group of an eval batch ("val/python"). */
  tag: string;
  inputIds: Int32Array;
  /** Negative: no loss at this position. */
  targetIds: Int32Array;
  weights: Float32Array;
  /** Packed rows: attention stays within equal ids; negative marks padding. */
  segmentIds?: Int32Array;
}

export type StreamFrame = { kind: 'train' | 'eval'; batch: StreamBatch } | { kind: 'checkpoint' | 'end' };

const WHAT_TO_RUN =
  'Regenerate the stream with `sdt train` or schemas/stream.ts StreamWriter, and check that its writer and ' +
  'sdt-native come from the same checkout (`npm run build:native`).';

export class StreamFormatError extends UserError {
  override name = 'StreamFormatError';
}

export function encodeStreamHeader(header: Partial<StreamHeader> = {}): Uint8Array {
  const out = new Uint8Array(STREAM_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(STREAM_MAGIC, 0);
  view.setUint32(8, header.version ?? STREAM_VERSION, true);
  view.setUint32(12, 0, true);
  view.setBigUint64(16, BigInt(header.firstTrainFrame ?? 0), true);
  return out;
}

/** A frame: kind code, payload length, CRC-32 over both and the payload, then the payload. */
export function encodeFrame(code: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, code, true);
  view.setUint32(4, payload.length, true);
  out.set(payload, FRAME_HEADER_BYTES);
  const crc = crc32(payload, crc32(out.subarray(0, 8)));
  view.setUint32(8, crc, true);
  return out;
}

function bytesOf(a: Int32Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Checks a batch's shapes and values that the format itself constrains. */
export function checkBatch(b: StreamBatch): void {
  const n = b.B * b.T;
  if (!Number.isInteger(b.B) || !Number.isInteger(b.T) || b.B < 1 || b.T < 1) {
    throw new RangeError(`stream batch: B and T must be positive integers (got B=${b.B}, T=${b.T})`);
  }
  for (const [name, arr] of [
    ['inputIds', b.inputIds],
    ['targetIds', b.targetIds],
    ['weights', b.weights],
    ['segmentIds', b.segmentIds],
  ] as const) {
    if (arr !== undefined && arr.length !== n) {
      throw new RangeError(`stream batch "${b.tag}": ${name} has ${arr.length} elements, B*T is ${n}`);
    }
  }
}

export function encodeBatchFrame(kind: 'train' | 'eval', b: StreamBatch): Uint8Array {
  return encodeFrame(FRAME_KINDS[kind], encodeBatchPayload(b));
}

/** The payload of a batch frame ("Batch payload" in schemas/stream.md). */
export function encodeBatchPayload(b: StreamBatch): Uint8Array {
  checkBatch(b);
  const n = b.B * b.T;
  const tag = new TextEncoder().encode(b.tag);
  const tagBytes = tag.length + ((4 - (tag.length % 4)) % 4);
  const arrays = b.segmentIds ? 4 : 3;
  const payload = new Uint8Array(16 + tagBytes + arrays * n * 4);
  const view = new DataView(payload.buffer);
  view.setUint32(0, b.B, true);
  view.setUint32(4, b.T, true);
  view.setUint32(8, b.segmentIds ? BATCH_HAS_SEGMENTS : 0, true);
  view.setUint32(12, tag.length, true);
  payload.set(tag, 16);
  let at = 16 + tagBytes;
  for (const a of [b.inputIds, b.targetIds, b.weights, b.segmentIds]) {
    if (!a) continue;
    payload.set(bytesOf(a), at);
    at += n * 4;
  }
  return payload;
}

export function encodeControlFrame(kind: 'checkpoint' | 'end'): Uint8Array {
  return encodeFrame(FRAME_KINDS[kind], new Uint8Array(0));
}

/**
 * Writes a stream to a Node Writable (e.g. the stdin of `sdt-native train --stream -`), honouring
 * back-pressure, or atomically to a file with StreamWriter.toFile.
 */
export class StreamWriter {
  private framesWritten = 0;
  private trainFrames = 0;
  private constructor(
    private readonly sink: { write(chunk: Uint8Array): Promise<void>; close(): Promise<void> },
  ) {}

  static async toWritable(out: Writable, header: Partial<StreamHeader> = {}): Promise<StreamWriter> {
    const w = new StreamWriter({
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          const onError = (err: Error) => reject(err);
          out.once('error', onError);
          const ok = out.write(chunk, (err) => {
            out.off('error', onError);
            if (err) reject(err);
            else if (ok) resolve();
          });
          if (!ok) out.once('drain', resolve);
        }),
      close: () => new Promise<void>((resolve) => out.end(resolve)),
    });
    await w.sink.write(encodeStreamHeader(header));
    return w;
  }

  /** The file appears only on close(); abort by not closing (the temporary file is left for cleanup). */
  static async toFile(path: string, header: Partial<StreamHeader> = {}): Promise<StreamWriter> {
    const file = await AtomicWriteStream.open(path);
    const w = new StreamWriter({ write: (chunk) => file.write(chunk), close: () => file.commit() });
    await w.sink.write(encodeStreamHeader(header));
    return w;
  }

  get frames(): number {
    return this.framesWritten;
  }
  /** Train frames written so far (the stream position they reach, minus firstTrainFrame). */
  get trainFramesWritten(): number {
    return this.trainFrames;
  }

  async writeTrain(b: StreamBatch): Promise<void> {
    await this.sink.write(encodeBatchFrame('train', b));
    this.framesWritten++;
    this.trainFrames++;
  }
  async writeEval(b: StreamBatch): Promise<void> {
    await this.sink.write(encodeBatchFrame('eval', b));
    this.framesWritten++;
  }
  /** Ask the trainer to checkpoint after its current step (without stopping). */
  async requestCheckpoint(): Promise<void> {
    await this.sink.write(encodeControlFrame('checkpoint'));
    this.framesWritten++;
  }
  /** Writes the end frame and closes the sink. */
  async end(): Promise<void> {
    await this.sink.write(encodeControlFrame('end'));
    this.framesWritten++;
    await this.sink.close();
  }
}

/**
 * Incremental decoder: push() chunks as they arrive, take complete frames out. finish() throws when
 * the input stopped inside a frame. Errors name the source, frame index and byte offset.
 */
export class StreamDecoder {
  header?: StreamHeader;
  private buf = new Uint8Array(0);
  private offset = 0; // bytes consumed before buf[0]
  private frameIndex = 0;
  constructor(readonly source: string) {}

  private fail(what: string): never {
    throw new StreamFormatError(
      `${this.source}: ${what} at frame ${this.frameIndex}, byte offset ${this.offset}. ${WHAT_TO_RUN}`,
    );
  }

  push(chunk: Uint8Array): StreamFrame[] {
    const merged = new Uint8Array(this.buf.length + chunk.length);
    merged.set(this.buf, 0);
    merged.set(chunk, this.buf.length);
    this.buf = merged;
    const frames: StreamFrame[] = [];
    if (!this.header) {
      if (this.buf.length < STREAM_HEADER_BYTES) return frames;
      const view = new DataView(this.buf.buffer, this.buf.byteOffset, STREAM_HEADER_BYTES);
      for (let i = 0; i < 8; i++) {
        if (this.buf[i] !== STREAM_MAGIC[i])
          this.fail('not an sdt trainer stream (bad magic; expected "SDTSTRM\\0")');
      }
      const version = view.getUint32(8, true);
      if (version !== STREAM_VERSION) {
        this.fail(`stream format version ${version}, but this reader reads version ${STREAM_VERSION}`);
      }
      if (view.getUint32(12, true) !== 0) this.fail('unknown header flags');
      this.header = { version, firstTrainFrame: Number(view.getBigUint64(16, true)) };
      this.consume(STREAM_HEADER_BYTES);
    }
    for (;;) {
      const f = this.tryFrame();
      if (!f) break;
      frames.push(f);
    }
    return frames;
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.offset += n;
  }

  private tryFrame(): StreamFrame | undefined {
    if (this.buf.length < FRAME_HEADER_BYTES) return undefined;
    const view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    const code = view.getUint32(0, true);
    const len = view.getUint32(4, true);
    const kind = KIND_BY_CODE[code];
    if (!kind) this.fail(`unknown frame kind ${code} (corrupt stream?)`);
    if (len > MAX_FRAME_PAYLOAD) this.fail(`frame length ${len} exceeds 1 GiB (corrupt stream?)`);
    if (this.buf.length < FRAME_HEADER_BYTES + len) return undefined;
    const payload = this.buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len);
    if (crc32(payload, crc32(this.buf.subarray(0, 8))) !== view.getUint32(8, true)) {
      this.fail('CRC-32 mismatch (corrupt stream)');
    }
    let out: StreamFrame;
    if (kind === 'checkpoint' || kind === 'end') {
      if (len !== 0) this.fail(`a ${kind} frame must have an empty payload`);
      out = { kind };
    } else {
      out = { kind, batch: this.decodeBatch(payload) };
    }
    this.consume(FRAME_HEADER_BYTES + len);
    this.frameIndex++;
    return out;
  }

  private decodeBatch(p: Uint8Array): StreamBatch {
    if (p.length < 16) this.fail('batch frame shorter than its 16-byte header');
    const view = new DataView(p.buffer, p.byteOffset, p.length);
    const B = view.getUint32(0, true);
    const T = view.getUint32(4, true);
    const flags = view.getUint32(8, true);
    const tagLen = view.getUint32(12, true);
    if (B === 0 || T === 0) this.fail(`batch shape B=${B}, T=${T} is out of range`);
    if ((flags & ~BATCH_HAS_SEGMENTS) !== 0) this.fail(`unknown batch flags ${flags}`);
    const n = B * T;
    const tagBytes = tagLen + ((4 - (tagLen % 4)) % 4);
    const arrays = flags & BATCH_HAS_SEGMENTS ? 4 : 3;
    if (16 + tagBytes + arrays * n * 4 !== p.length) {
      this.fail(
        `batch frame of B=${B}, T=${T} has ${p.length} payload bytes, which does not match its shape`,
      );
    }
    const tag = new TextDecoder().decode(p.subarray(16, 16 + tagLen));
    // Copy out so the arrays are aligned and independent of the decoder's buffer.
    const body = p.slice(16 + tagBytes);
    const i32 = (k: number) => new Int32Array(body.buffer, k * n * 4, n);
    const batch: StreamBatch = {
      B,
      T,
      tag,
      inputIds: i32(0),
      targetIds: i32(1),
      weights: new Float32Array(body.buffer, 2 * n * 4, n),
    };
    if (arrays === 4) batch.segmentIds = i32(3);
    return batch;
  }

  /** Call at end of input: throws when it stopped inside the header or a frame. */
  finish(): void {
    if (!this.header)
      this.fail(
        this.offset + this.buf.length === 0 ? 'empty input: no stream header' : 'truncated stream header',
      );
    if (this.buf.length > 0) this.fail(`truncated frame (${this.buf.length} bytes left over)`);
  }
}

/** Reads every frame of a stream file (or any byte source), checking the end. */
export async function* readStream(
  source: AsyncIterable<Uint8Array>,
  name: string,
): AsyncGenerator<StreamFrame, StreamHeader, undefined> {
  const dec = new StreamDecoder(name);
  for await (const chunk of source) {
    for (const f of dec.push(chunk)) yield f;
  }
  dec.finish();
  return dec.header as StreamHeader;
}

export function readStreamFile(path: string): AsyncGenerator<StreamFrame, StreamHeader, undefined> {
  return readStream(createReadStream(path), path);
}

/** JSON lines `sdt-native train` prints on stdout (one object per line, field "event"). */
export type NativeTrainEvent =
  | {
      event: 'step';
      /** Completed steps so far (this step's number, 1-based). */
      step: number;
      /** Weighted CE of the step: sum w*CE / sum w over its micro-batches; null when non-finite. */
      loss: number | null;
      lr: number;
      /** Global L2 norm before clipping; null when non-finite. */
      grad_norm: number | null;
      /** B*T summed over all train frames consumed by the run. */
      tokens: number;
      /** This step's B*T per second of wall time, waiting on the stream included. */
      tokens_per_s: number;
      /** true: non-finite loss or gradient, no update was applied. */
      skipped: boolean;
    }
  | { event: 'eval'; step: number; group: string; loss: number; tokens: number }
  | { event: 'checkpoint'; step: number; path: string }
  | { event: 'error'; step: number; message: string }
  | {
      event: 'done';
      step: number;
      reason: 'total_steps' | 'end_frame' | 'end_of_input' | 'signal' | 'stop_after_steps';
      stream_position: number;
    };

/** Parses one stdout line of `sdt-native train`; undefined for a line that is not an event. */
export function parseNativeEvent(line: string): NativeTrainEvent | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(trimmed) as { event?: unknown };
    return typeof v.event === 'string' ? (v as NativeTrainEvent) : undefined;
  } catch {
    return undefined;
  }
}
