/**
 * The default corpus built locally and through Slurm (an array job of --tasks plus the afterok merge), side
 * by side in one run, on a throwaway single-node cluster (scripts/slurm-cluster.sh) unless SLURM_CONF
 * names one; then the scheduler's own cost per task (an array of empty tasks). Prints wall times, their
 * ratio, the tasks' CPU rate per core, the merge's time and peak memory, and checks the two outputs are
 * byte-identical. With --eval-data DIR (a `sdt data synth` folder) it also times `sdt eval synth --oracle`
 * over DIR's first --eval-limit test tasks in process and as --eval-tasks Slurm array tasks of the same
 * sandbox concurrency (one at a time here), and checks the outputs agree but for timing fields.
 * Run: npm run bench:scale-out [-- --tasks 4 --rounds 1 --tokenizer FILE --eval-data runs/synth --skip-build]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { listStdlibCorpus } from '../pipelines/sources/pystdlib.ts';
import { saveTokenizer, trainBpe } from '../pipelines/tokenizer/index.ts';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1' },
    'empty-tasks': { type: 'string', default: '16' },
    tokenizer: { type: 'string' },
    'eval-data': { type: 'string' },
    'eval-limit': { type: 'string', default: '200' },
    'eval-tasks': { type: 'string', default: '2' },
    'skip-build': { type: 'boolean', default: false },
  },
});
const tasks = Number(values.tasks);
const rounds = Number(values.rounds);
const emptyTasks = Number(values['empty-tasks']);
const root = join(import.meta.dirname, '..');
const SDT = join(root, 'bin', 'sdt.js');
const CLUSTER = join(root, 'scripts', 'slurm-cluster.sh');
const work = mkdtempSync(join(tmpdir(), 'sdt-bench-scale-'));
const PATH = `${process.env.PATH}:/usr/sbin`;

let tokenizer = values.tokenizer;
if (!tokenizer && !values['skip-build']) {
  // As bench:data: a 4096-token BPE trained on the first 200 files of the corpus.
  const files = (await listStdlibCorpus()).slice(0, 200);
  tokenizer = join(work, 'tokenizer.json');
  await saveTokenizer(
    tokenizer,
    await trainBpe(
      files.map((f) => readFileSync(f.path, 'utf8')),
      { vocabSize: 4096 },
    ),
  );
}

let cluster: string | undefined;
let conf = process.env.SLURM_CONF;
if (!conf) {
  cluster = join(work, 'cluster');
  const t0 = performance.now();
  const r = spawnSync(CLUSTER, ['start', cluster], { encoding: 'utf8', env: { ...process.env, PATH } });
  if (r.status !== 0) throw new Error(`slurm-cluster.sh start: ${r.stderr}`);
  conf = join(cluster, 'slurm.conf');
  process.stdout.write(`throwaway cluster up in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
const env = { ...process.env, PATH, SLURM_CONF: conf };

const digests = (dir: string): string => {
  const h = createHash('sha256');
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else h.update(`${rel}${e.name}\0`).update(readFileSync(join(d, e.name)));
    }
  };
  walk(dir, '');
  return h.digest('hex');
};

/** Wall seconds, and CPU seconds and peak RSS (MB) from GNU time when it is installed. */
function timed(args: string[]): { wall: number; cpu?: number; rssMB?: number } {
  const usage = join(work, 'time.txt');
  const gnuTime = existsSync('/usr/bin/time');
  const argv = gnuTime
    ? ['/usr/bin/time', '-f', '%U %S %M', '-o', usage, process.execPath, SDT, ...args]
    : [process.execPath, SDT, ...args];
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sdt ${args.join(' ')}: ${r.stderr}`);
  const wall = (performance.now() - t0) / 1000;
  if (!gnuTime) return { wall };
  const [user, sys, rss] = readFileSync(usage, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: user + sys, rssMB: Math.round(rss / 1024) };
}

interface Marker {
  started: string;
  ended: string;
  cpuSeconds: number;
  maxRssMB: number;
  inputBytes?: number;
  records?: number;
  bytes?: number;
  summary?: { seconds: number };
}

/** The markers of a finished run, when it was first submitted, and the span its tasks ran (ms). */
function runTimes(run: string, tasks: number) {
  const markers = Array.from(
    { length: tasks },
    (_, r) =>
      JSON.parse(readFileSync(join(run, 'completions', String(r).padStart(5, '0')), 'utf8')) as Marker,
  );
  const merge = JSON.parse(readFileSync(join(run, 'completions', 'merge'), 'utf8')) as Marker;
  const submitted = Date.parse(
    JSON.parse(readFileSync(join(run, 'submissions.jsonl'), 'utf8').split('\n')[0]).at as string,
  );
  const firstStart = Math.min(...markers.map((m) => Date.parse(m.started)));
  const lastEnd = Math.max(...markers.map((m) => Date.parse(m.ended)));
  return { markers, merge, submitted, firstStart, lastEnd };
}

const load0 = loadavg()[0];
const rows: string[] = [];
for (let round = 0; round < (values['skip-build'] ? 0 : rounds); round++) {
  const local = join(work, `local-${round}`);
  const dist = join(work, `slurm-${round}`);
  const base = ['data', 'build', '--tokenizer', tokenizer!, '--quiet'];
  const loc = timed([...base, '--out', local, '--workers', '1']);
  const localS = loc.wall;
  const distS = timed([
    ...base,
    '--out',
    dist,
    '--executor',
    'slurm',
    '--tasks',
    String(tasks),
    '--poll-seconds',
    '0.2',
  ]).wall;
  const same = digests(local) === digests(dist);
  const run = `${dist}.run`;
  const { markers, merge, submitted, firstStart, lastEnd } = runTimes(run, tasks);
  const cpu = markers.reduce((n, m) => n + m.cpuSeconds, 0);
  const input = markers.reduce((n, m) => n + (m.inputBytes ?? 0), 0);
  const parts = markers.reduce((n, m) => n + (m.bytes ?? 0), 0);
  const prepare = JSON.parse(readFileSync(join(run, 'completions', 'prepare'), 'utf8')) as {
    seconds: number;
  };
  const localCpu =
    loc.cpu === undefined
      ? 'no /usr/bin/time'
      : `${loc.cpu.toFixed(1)} s CPU = ${(input / 1e6 / loc.cpu).toFixed(2)} MB/s per core, peak RSS ${loc.rssMB} MB; the tasks' CPU beyond it: ${((cpu - loc.cpu) / tasks).toFixed(2)} s per task`;
  rows.push(
    [
      `round ${round + 1}: local (1 worker) ${localS.toFixed(1)} s, Slurm (${tasks} tasks x 1 CPU + merge) ${distS.toFixed(1)} s, ratio ${(distS / localS).toFixed(2)}x; byte-identical: ${same}`,
      `  local build: ${localCpu}`,
      `  listing the source for the tasks (before submitting): ${prepare.seconds.toFixed(2)} s`,
      `  submit -> first task start ${((firstStart - submitted) / 1000).toFixed(1)} s; tasks ran ${((lastEnd - firstStart) / 1000).toFixed(1)} s of wall`,
      `  tasks: ${(input / 1e6).toFixed(1)} MB input in ${cpu.toFixed(1)} s CPU = ${(input / 1e6 / cpu).toFixed(2)} MB/s per core (incl. each task's start-up); per task CPU ${markers.map((m) => m.cpuSeconds.toFixed(1)).join(', ')} s; peak RSS ${Math.max(...markers.map((m) => m.maxRssMB))} MB`,
      `  parts ${(parts / 1e6).toFixed(1)} MB (${(parts / input).toFixed(2)}x input); merge ${merge.summary!.seconds.toFixed(1)} s (${merge.cpuSeconds.toFixed(1)} s CPU, ${(parts / 1e6 / merge.summary!.seconds).toFixed(1)} MB/s of parts), peak RSS ${merge.maxRssMB} MB`,
    ].join('\n'),
  );
}

/** results.jsonl and summary.json without their timing fields (docs/scale-out.md lists them). */
const untimed = (dir: string): string =>
  readFileSync(join(dir, 'results.jsonl'), 'utf8').replace(/"time_ms":\d+/g, '') +
  JSON.stringify({
    ...JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')),
    generation_seconds: 0,
    execution_seconds: 0,
    tokens_per_second: 0,
  });

if (values['eval-data']) {
  const evalTasks = Number(values['eval-tasks']);
  const base = ['eval', 'synth', '--oracle', '--data', values['eval-data'], '--quiet'];
  base.push('--limit', values['eval-limit']!, '--concurrency', '2');
  const local = join(work, 'eval-local');
  const dist = join(work, 'eval-slurm');
  const loc = timed([...base, '--out', local]);
  const slurm = [...base, '--out', dist, '--executor', 'slurm', '--tasks', String(evalTasks)];
  const sl = timed([...slurm, '--cpus-per-task', '2', '--poll-seconds', '0.2']);
  const run = `${dist}.run`;
  const { markers, merge, submitted, firstStart, lastEnd } = runTimes(run, evalTasks);
  const span = (m: Marker) => (Date.parse(m.ended) - Date.parse(m.started)) / 1000;
  rows.push(
    [
      `eval synth --oracle, ${values['eval-limit']} tasks, sandbox concurrency 2: local (in process) ${loc.wall.toFixed(1)} s, Slurm (${evalTasks} tasks x 2 CPUs + merge) ${sl.wall.toFixed(1)} s, ratio ${(sl.wall / loc.wall).toFixed(2)}x; same results but for timing: ${untimed(local) === untimed(dist)}`,
      `  submit -> first task start ${((firstStart - submitted) / 1000).toFixed(1)} s; tasks ${markers.map((m) => span(m).toFixed(1)).join(', ')} s (ran ${((lastEnd - firstStart) / 1000).toFixed(1)} s of wall); merge ${span(merge).toFixed(1)} s (${merge.cpuSeconds.toFixed(1)} s CPU), peak RSS ${merge.maxRssMB} MB`,
    ].join('\n'),
  );
}

// The scheduler alone: an array of empty tasks, submitted and waited for.
const t0 = performance.now();
execFileSync(
  'sbatch',
  ['--wait', '--quiet', `--array=0-${emptyTasks - 1}`, '--output=/dev/null', '--wrap=true'],
  { env },
);
const arrayS = (performance.now() - t0) / 1000;
const t1 = performance.now();
execFileSync('sbatch', ['--wait', '--quiet', '--output=/dev/null', '--wrap=true'], { env });
const oneS = (performance.now() - t1) / 1000;

const cpu = cpus();
process.stdout.write(
  [
    `hardware: ${cpu[0]?.model ?? '?'}, ${cpu.length} CPUs; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
    ...(tokenizer ? [`corpus: the default (python3 stdlib), tokenizer ${tokenizer}`] : []),
    ...rows,
    `scheduling: one empty job submitted and waited for ${oneS.toFixed(2)} s; an array of ${emptyTasks} empty tasks ${arrayS.toFixed(2)} s (${((arrayS / emptyTasks) * 1000).toFixed(0)} ms per task, ${cpu.length} at a time)`,
    '',
  ].join('\n'),
);
if (cluster) spawnSync(CLUSTER, ['stop', cluster], { env });
rmSync(work, { recursive: true, force: true });
