/** Worker-thread side of the determinism test: corrupt the given window indices, in the given order. */
import { parentPort, workerData } from 'node:worker_threads';
import { corruptWindow } from '../pipelines/corrupt/corrupt.ts';
import { fixtureConfig, fixtureWindows } from './corrupt-helpers.ts';

const { indices, kind } = workerData.data as { indices: number[]; kind: 'mask' | 'edit' };
const wins = fixtureWindows();
const cfg = fixtureConfig(kind);
const out = indices.map((i) => {
  const e = corruptWindow(wins[i], i, cfg);
  return { i, input: Array.from(e.input), target: Array.from(e.target), weight: Array.from(e.weight) };
});
parentPort!.postMessage(out);
