/**
 * The feed's frames in the trainer stream format (schemas/stream.ts, spec schemas/stream.md): micro-batches
 * become train frames tagged with the curriculum stage of their step, validation batches eval frames tagged
 * with their group.
 */
import {
  encodeBatchFrame,
  encodeControlFrame,
  encodeStreamHeader,
  type StreamBatch,
} from '../schemas/stream.ts';
import type { MicroBatch } from './batch.ts';
import type { TrainConfig } from './config.ts';
import { stageAt } from './curriculum.ts';

const toStreamBatch = (b: MicroBatch, tag: string): StreamBatch => ({
  B: b.B,
  T: b.T,
  tag,
  inputIds: b.input,
  targetIds: b.target,
  weights: b.weight,
  segmentIds: b.segment,
});

export const encodeHeader = (firstTrainFrame: number): Uint8Array => encodeStreamHeader({ firstTrainFrame });

export const encodeTrain = (b: MicroBatch, step: number, cfg: TrainConfig): Uint8Array =>
  encodeBatchFrame('train', toStreamBatch(b, stageAt(cfg, step)));

export const encodeEval = (b: MicroBatch, group: string): Uint8Array =>
  encodeBatchFrame('eval', toStreamBatch(b, group));

export const encodeEnd = (): Uint8Array => encodeControlFrame('end');
