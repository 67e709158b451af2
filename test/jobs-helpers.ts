import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SDT = join(import.meta.dirname, '..', 'bin', 'sdt.js');

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `sdt ARGS` in a child process (the sbatch scripts run the CLI the same way). */
export function sdtSync(args: string[], env: NodeJS.ProcessEnv = process.env): Ran {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [SDT, ...args], { env, encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

export function sdtAsync(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SDT, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Every file under a directory, relative name -> sha256 of its bytes, for byte-identity checks. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else
        out.set(
          `${rel}${e.name}`,
          createHash('sha256')
            .update(readFileSync(join(d, e.name)))
            .digest('hex'),
        );
    }
  };
  walk(dir, '');
  return out;
}

export async function waitFor(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An eval's outputs without the fields that time the run (results.jsonl time_ms; summary.json
 * generation_seconds, execution_seconds, tokens_per_second; their rows in summary.md): what must equal
 * across executors and part counts.
 */
export function evalOutputs(dir: string): { results: unknown[]; summary: unknown; markdown: string[] } {
  const results = readFileSync(join(dir, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const { time_ms: _, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
  const {
    generation_seconds: _g,
    execution_seconds: _e,
    tokens_per_second: _t,
    ...summary
  } = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
  const markdown = readFileSync(join(dir, 'summary.md'), 'utf8')
    .split('\n')
    .filter((l) => !/^\| (tokens\/s|generation time|wall time) \|/.test(l));
  return { results, summary, markdown };
}

/** `sdt data synth` with 20 train and 20 test tasks into `dir` (about 20 s); returns `dir`. */
export function synthTasks(dir: string): string {
  const r = sdtSync([
    'data',
    'synth',
    '--out',
    dir,
    '--train',
    '20',
    '--validation',
    '0',
    '--test',
    '20',
    '--quiet',
  ]);
  if (r.code !== 0) throw new Error(`sdt data synth failed: ${r.stderr}`);
  return dir;
}

/** `sdt-native init`: a checkpoint of random weights for `config` with `tokenizer`, written to `out`. */
export function initCheckpoint(
  bin: string,
  config: Record<string, unknown>,
  tokenizer: string,
  out: string,
): string {
  writeFileSync(`${out}.model.json`, JSON.stringify(config));
  const init = spawnSync(
    bin,
    ['init', '--config', `${out}.model.json`, '--out', out, '--tokenizer', tokenizer],
    {
      encoding: 'utf8',
    },
  );
  if (init.status !== 0) throw new Error(`sdt-native init failed: ${init.stderr}`);
  return out;
}
