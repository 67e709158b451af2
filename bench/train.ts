/**
 * `npm run bench:train`: runs `sdt-native bench-train` (a training step against the GEMM backend on the
 * model's own GEMM shapes, measured in one run) and prints the figures with the hardware they came from.
 * Extra arguments pass through, e.g. `npm run bench:train -- --batch 8 --seq 512 --threads 2`.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { nativeBinary } from '../common/native.ts';

interface BenchResult {
  hardware: { cpu: string; omp_threads: number; gemm_backend: string };
  config: {
    parameters: number;
    matmul_parameters: number;
    batch: number;
    seq: number;
    tokens_per_step: number;
    attention_mode: string;
    model: Record<string, unknown>;
  };
  flops_formula: string;
  step_seconds_median: number;
  forward_backward_seconds_median: number;
  gemm_seconds_per_step: number;
  tokens_per_s: number;
  step_gflops: number;
  gemm_gflops: number;
  ratio_step_to_gemm: number;
  attention_flop_share: number;
  gemm_shapes: { name: string; M: number; N: number; K: number; calls_per_step: number; gflops: number }[];
  peak_rss_mib: number;
}

const bin = nativeBinary();
const args = ['bench-train', ...process.argv.slice(2)];
const r = spawnSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) {
  console.error(`sdt-native ${args.join(' ')} exited ${r.status}`);
  process.exit(r.status ?? 1);
}
if (args.includes('--help')) {
  process.stdout.write(r.stdout);
  process.exit(0);
}
const b = JSON.parse(r.stdout) as BenchResult;
const m = b.config.model;
const f = (x: number, d = 1) => x.toFixed(d);
console.log(`hardware:   ${b.hardware.cpu}, ${cpus().length} cores visible, ${f(totalmem() / 2 ** 30)} GiB`);
console.log(`            OpenMP threads ${b.hardware.omp_threads}, GEMM backend ${b.hardware.gemm_backend}`);
console.log(
  `model:      ${f(b.config.parameters / 1e6, 2)}M params (${f(b.config.matmul_parameters / 1e6, 2)}M in matmuls), ` +
    `vocab ${m.vocab_size}, hidden ${m.hidden_size}, ${m.num_hidden_layers} layers, ${m.num_attention_heads} heads, ` +
    `intermediate ${m.intermediate_size}, ${b.config.attention_mode} attention`,
);
console.log(
  `batch:      B=${b.config.batch} x T=${b.config.seq} = ${b.config.tokens_per_step} tokens per step`,
);
console.log(
  `step:       ${f(b.step_seconds_median * 1e3)} ms median (forward+backward ${f(b.forward_backward_seconds_median * 1e3)} ms)`,
);
console.log(`tokens/s:   ${f(b.tokens_per_s)}`);
console.log(`step FLOPs: ${b.flops_formula} (attention ${f(b.attention_flop_share * 100)}%)`);
console.log(`step:       ${f(b.step_gflops, 2)} GFLOP/s achieved`);
console.log(
  `GEMM:       ${f(b.gemm_gflops, 2)} GFLOP/s on the model's shapes (same run; ${f(b.gemm_seconds_per_step * 1e3)} ms of GEMM per step)`,
);
for (const s of b.gemm_shapes) {
  console.log(
    `              ${s.name.padEnd(13)} [${s.M}x${s.K}]·[${s.K}x${s.N}] x${s.calls_per_step}: ${f(s.gflops, 2)} GFLOP/s`,
  );
}
console.log(`ratio:      ${f(b.ratio_step_to_gemm, 3)} of GEMM throughput (target >= 0.5)`);
console.log(`peak RSS:   ${f(b.peak_rss_mib)} MiB`);
