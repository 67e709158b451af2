/**
 * Tokenizer speed: BPE training on the default corpus (stdlib train split), and encoding speed next to the
 * raw UTF-8 decode rate over the same files. Run: npm run bench:tokenizer [-- --vocab-size N]
 */
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { listStdlibCorpus } from '../pipelines/sources/pystdlib.ts';
import { tokenizerFromJson, trainBpe, WordCounter } from '../pipelines/tokenizer/index.ts';

const { values } = parseArgs({ options: { 'vocab-size': { type: 'string', default: '8192' } } });
const vocabSize = Number(values['vocab-size']);
const mb = (bytes: number): string => (bytes / 1e6).toFixed(2);
const now = (): number => performance.now() / 1000;

const cpu = cpus();
console.log(
  `hardware: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} logical cores; node ${process.version}`,
);

const corpus = await listStdlibCorpus();
async function readSplit(split: 'train' | 'validation'): Promise<Buffer[]> {
  return Promise.all(corpus.filter((f) => f.split === split).map((f) => readFile(f.path)));
}
const train = await readSplit('train');
const validation = await readSplit('validation');
const trainBytes = train.reduce((a, b) => a + b.length, 0);
const valBytes = validation.reduce((a, b) => a + b.length, 0);
console.log(
  `corpus: train ${train.length} files ${mb(trainBytes)} MB; validation ${validation.length} files ${mb(valBytes)} MB`,
);

const decoder = new TextDecoder();
let t0 = now();
const cpu0 = process.cpuUsage();
const trainTexts = train.map((b) => decoder.decode(b));
const counter = new WordCounter();
for (const text of trainTexts) counter.add(text);
const tCount = now() - t0;
t0 = now();
const trained = await trainBpe(counter, { vocabSize, minFrequency: 2 });
const tMerge = now() - t0;
const cpuUsed = process.cpuUsage(cpu0);
const tCpu = (cpuUsed.user + cpuUsed.system) / 1e6;
console.log(
  `train: vocab ${trained.tokenizer.vocabSize} (${trained.merges} merges), ${counter.counts.size} distinct words; ` +
    `pre-tokenize+count ${tCount.toFixed(2)} s, merges ${tMerge.toFixed(2)} s, total ${(tCount + tMerge).toFixed(2)} s wall, ${tCpu.toFixed(2)} s CPU`,
);

interface Rate {
  /** MB of UTF-8 input per wall-clock second. */
  wall: number;
  /** MB per second of this process's CPU time: the per-core rate, fair even when other jobs share the cores. */
  cpu: number;
}

/** Best of `reps` timed passes of `fn` over the buffers. */
function rate(buffers: Buffer[], reps: number, fn: (b: Buffer, i: number) => void): Rate {
  const mbytes = buffers.reduce((a, b) => a + b.length, 0) / 1e6;
  let wall = Number.POSITIVE_INFINITY;
  let cpu = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t = now();
    const c = process.cpuUsage();
    buffers.forEach(fn);
    const used = process.cpuUsage(c);
    wall = Math.min(wall, now() - t);
    cpu = Math.min(cpu, (used.user + used.system) / 1e6);
  }
  return { wall: mbytes / wall, cpu: mbytes / cpu };
}

const fmt = (r: Rate): string => `${r.cpu.toFixed(2)} MB/s per CPU-second (${r.wall.toFixed(2)} MB/s wall)`;

console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} (2-core machine shared with other jobs)`,
);
for (const [name, buffers] of [
  ['validation', validation],
  ['train', train],
] as const) {
  const texts = buffers.map((b) => decoder.decode(b));
  const decodeRate = rate(buffers, 3, (b) => decoder.decode(b));
  // A freshly loaded tokenizer starts with an empty word cache: the first pass is the cold rate.
  const fresh = tokenizerFromJson(trained.json);
  let tokens = 0;
  const cold = rate(buffers, 1, (_b, i) => {
    tokens += fresh.encode(texts[i]).length;
  });
  const warm = rate(buffers, 2, (_b, i) => fresh.encode(texts[i]));
  const bytes = buffers.reduce((a, b) => a + b.length, 0);
  console.log(
    `encode ${name} (${mb(bytes)} MB, ${tokens} tokens, ${(bytes / tokens).toFixed(3)} bytes/token):`,
  );
  console.log(`  tokenizer, cold cache: ${fmt(cold)}`);
  console.log(`  tokenizer, warm cache: ${fmt(warm)}`);
  console.log(`  TextDecoder (UTF-8):   ${fmt(decodeRate)}`);
  console.log(
    `  ratio encode/decode (CPU): ${(cold.cpu / decodeRate.cpu).toFixed(4)} cold, ${(warm.cpu / decodeRate.cpu).toFixed(4)} warm`,
  );
}
