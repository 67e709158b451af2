import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { selectTasks } from '../eval/commands/eval.ts';
import {
  ModelGenerator,
  type SamplerClientLike,
  type SamplerFlags,
  type SamplerPrompt,
} from '../eval/generators/model.ts';
import { OracleGenerator } from '../eval/generators/oracle.ts';
import type { GenerationStats, Generator, TaskGeneration } from '../eval/generators/types.ts';
import { REPO_ROOT } from '../eval/paths.ts';
import { runEval } from '../eval/run.ts';
import { fix } from '../eval/suites/fix.ts';
import { humaneval } from '../eval/suites/humaneval.ts';
import { infill } from '../eval/suites/infill.ts';
import { mbpp } from '../eval/suites/mbpp.ts';
import type { EvalTask } from '../eval/suites/types.ts';

// CI machines of this project keep the upstream files beside the checkout; elsewhere set SDT_EVAL_DATA.
const dataDir = process.env.SDT_EVAL_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'data');
const haveData = existsSync(join(dataDir, 'humaneval', 'HumanEval.jsonl.gz'));
if (!haveData) {
  console.warn(
    `eval tests skipped: benchmark data not found in ${dataDir} (set SDT_EVAL_DATA to its folder).`,
  );
}
const withData = describe.skipIf(!haveData);
const outRoot = mkdtempSync(join(tmpdir(), 'sdt-eval-test-'));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

const base = { nSamples: 1, ks: [1], concurrency: 2, quiet: true, limits: { timeoutMs: 10_000 } };

/** Returns fixed completions per task: the wrong-answer control. */
class ConstantGenerator implements Generator {
  readonly name = 'constant';
  readonly settings = {};
  constructor(private readonly text: (t: EvalTask) => string) {}
  async generate(tasks: EvalTask[], n: number, onTask?: (g: TaskGeneration) => void) {
    return tasks.map((t) => {
      const g = { taskId: t.id, completions: Array.from({ length: n }, () => this.text(t)) };
      onTask?.(g);
      return g;
    });
  }
  stats(): GenerationStats {
    return { tokens: 0, forwardPasses: 0, seconds: 0 };
  }
  async close() {}
}

withData('oracle runs: the references pass, wrong answers fail', () => {
  it('HumanEval: all 164 reference solutions pass', async () => {
    const tasks = await humaneval.load({ dataDir });
    expect(tasks.length).toBe(164);
    const { summary } = await runEval({
      ...base,
      suite: 'humaneval',
      tasks,
      generator: new OracleGenerator(),
    });
    expect(summary.failing_task_ids).toEqual([]);
    expect(summary.tasks_passed).toBe(164);
    expect(summary.pass_at_k['pass@1']).toBe(1);
  });

  it('HumanEval: a body that returns None fails, and stop sequences cut a trailing test', async () => {
    const tasks = (await humaneval.load({ dataDir })).slice(0, 8);
    const wrong = await runEval({
      ...base,
      suite: 'humaneval',
      tasks,
      generator: new ConstantGenerator(() => '    return None\n'),
    });
    expect(wrong.summary.tasks_passed).toBe(0);
    expect(wrong.summary.error_kinds.assertion).toBeGreaterThan(0);
    // The reference followed by junk the model might add after the function: the stop sequence removes it.
    const trailing = await runEval({
      ...base,
      suite: 'humaneval',
      tasks,
      nSamples: 2,
      ks: [1, 2],
      generator: new ConstantGenerator((t) => `${t.reference}\n\nprint(undefined_name)\nassert False\n`),
    });
    expect(trailing.summary.tasks_passed).toBe(8);
    expect(trailing.results.every((r) => !r.completion.includes('undefined_name'))).toBe(true);
  });

  it('MBPP: the test split is task ids 11-510 and a slice of references passes', async () => {
    const tasks = await mbpp.load({ dataDir });
    expect(tasks.length).toBe(500);
    expect(tasks[0].id).toBe('mbpp/11');
    expect(tasks[499].id).toBe('mbpp/510');
    expect(tasks[0].prompt).toMatch(/^You are an expert Python programmer, and here is your task: /);
    expect(tasks[0].prompt.match(/\[BEGIN\]/g)?.length).toBe(4); // 3 shots + the task
    expect(tasks[0].prompt.endsWith('[BEGIN]\n')).toBe(true);
    expect((await mbpp.load({ dataDir, shots: 0 }))[0].prompt.match(/\[BEGIN\]/g)?.length).toBe(1);
    // Task 367's setup code uses the solution's Node class: it must run after the completion.
    const slice = selectTasks(tasks, ['11', '12', '367'], undefined).concat(tasks.slice(100, 137));
    const { summary } = await runEval({
      ...base,
      suite: 'mbpp',
      tasks: slice,
      generator: new OracleGenerator(),
    });
    expect(summary.failing_task_ids).toEqual([]);
    expect(summary.tasks).toBe(40);
  });

  it('infilling: references pass in each variant, and single-line completions keep one line', async () => {
    for (const variant of ['single-line', 'multi-line', 'random-span', 'random-span-light']) {
      const tasks = (await infill.load({ dataDir, variant })).filter((_, i) => i % 97 === 0).slice(0, 8);
      expect(tasks.every((t) => t.suffix !== undefined)).toBe(true);
      const { summary } = await runEval({
        ...base,
        suite: 'infill',
        variant,
        tasks,
        generator: new OracleGenerator(),
      });
      expect({ variant, failing: summary.failing_task_ids }).toEqual({ variant, failing: [] });
    }
    const single = (await infill.load({ dataDir, variant: 'single-line' })).slice(0, 4);
    const twoLines = await runEval({
      ...base,
      suite: 'infill',
      tasks: single,
      generator: new ConstantGenerator((t) => `${t.reference}    this is not python\n`),
    });
    expect(twoLines.summary.tasks_passed).toBe(4);
    await expect(infill.load({ dataDir, variant: 'nope' })).rejects.toThrow(/--variant/);
  });

  it('HumanEvalFix: fixed solutions pass, buggy ones fail', async () => {
    const tasks = (await fix.load({ dataDir })).slice(0, 30);
    expect(tasks[0].prompt).toContain('Fix bugs in has_close_elements');
    const good = await runEval({ ...base, suite: 'fix', tasks, generator: new OracleGenerator('reference') });
    expect(good.summary.tasks_passed).toBe(30);
    // Some buggy solutions loop forever: a short wall-clock limit keeps this fast.
    const bad = await runEval({
      ...base,
      limits: { timeoutMs: 2000, cpuSeconds: 2 },
      suite: 'fix',
      tasks,
      generator: new OracleGenerator('buggy'),
    });
    expect(bad.summary.tasks_passed).toBe(0);
  });

  it('--task-ids and --limit select tasks, unknown ids are named', async () => {
    const tasks = await humaneval.load({ dataDir });
    expect(selectTasks(tasks, ['HumanEval/3', '7'], undefined).map((t) => t.id)).toEqual([
      'HumanEval/3',
      'HumanEval/7',
    ]);
    expect(selectTasks(tasks, [], 5).length).toBe(5);
    expect(() => selectTasks(tasks, ['HumanEval/999'], undefined)).toThrow(/HumanEval\/999/);
  });
});

withData('model generator (against a fake sampler client)', () => {
  it('sends plain prompts without their final line break, and completions that start with it pass', async () => {
    const tasks = (await humaneval.load({ dataDir })).slice(0, 4);
    const byPrompt = new Map(tasks.map((t) => [t.prompt, t]));
    const client: SamplerClientLike = {
      async generate(prompts: SamplerPrompt[]) {
        return {
          seconds: 0.1,
          completions: prompts.map((p) => {
            const text = 'text' in p ? p.text : '';
            expect(text.endsWith('\n')).toBe(false);
            const t = byPrompt.get(`${text}\n`);
            if (!t) throw new Error(`unexpected prompt ${text.slice(0, 60)}`);
            // What a model does after such a prompt: the line break (with the indentation), then the body.
            return { text: `\n${t.reference}`, tokens: 10, forwardPasses: 10 };
          }),
        };
      },
      async close() {},
    };
    const flags = {
      mode: 'ar',
      block: 8,
      threshold: 0.9,
      maxNew: 64,
      temperature: 0,
      topP: 1,
      seed: 0,
    } as const;
    const { summary } = await runEval({
      ...base,
      suite: 'humaneval',
      tasks,
      nSamples: 1,
      ks: [1],
      generator: new ModelGenerator(client, flags, 'fake-ckpt', 2),
    });
    expect(summary.pass_at_k['pass@1']).toBe(1);
  });

  it('sends FIM prompts, counts tokens and forward passes, varies the seed per sample', async () => {
    const tasks = (await infill.load({ dataDir, variant: 'single-line' })).slice(0, 3);
    const byPrompt = new Map(tasks.map((t) => [`${t.prompt}|${t.suffix}`, t]));
    const seeds: number[] = [];
    const client: SamplerClientLike = {
      async generate(prompts: SamplerPrompt[], settings: SamplerFlags) {
        seeds.push(settings.seed ?? -1);
        return {
          seconds: 0.5,
          completions: prompts.map((p) => {
            const t = 'prefix' in p ? byPrompt.get(`${p.prefix}|${p.suffix}`) : undefined;
            if (!t) throw new Error(`unexpected prompt ${JSON.stringify(p).slice(0, 60)}`);
            // Sample 0 is right, sample 1 is wrong: pass@1 = 0.5, pass@2 = 1.
            const text = settings.seed === 7 ? `${t.reference}junk` : 'x = (\n';
            return { text, tokens: 10, forwardPasses: 4 };
          }),
        };
      },
      async close() {},
    };
    const flags = {
      mode: 'diffusion',
      block: 8,
      threshold: 0.9,
      maxNew: 64,
      temperature: 0.7,
      topP: 1,
      seed: 7,
    } as const;
    const gen = new ModelGenerator(client, flags, 'fake-ckpt', 2);
    const { summary } = await runEval({
      ...base,
      suite: 'infill',
      tasks,
      nSamples: 2,
      ks: [1, 2],
      generator: gen,
    });
    expect(seeds).toEqual([7, 7, 8, 8]);
    expect(summary.pass_at_k['pass@1']).toBeCloseTo(0.5, 12);
    expect(summary.pass_at_k['pass@2']).toBe(1);
    expect(summary.tokens).toBe(60);
    expect(summary.forward_passes_per_token).toBeCloseTo(0.4, 12);
    expect(summary.tokens_per_second).toBeCloseTo(60 / 2, 12); // 4 calls of 0.5 s
    expect(summary.settings).toMatchObject({ ckpt: 'fake-ckpt', block: 8, threshold: 0.9 });
  });
});

withData('sdt eval CLI', () => {
  it('writes per-sample JSONL and a JSON + markdown summary', () => {
    const out = join(outRoot, 'cli');
    const r = spawnSync(
      'node',
      [
        'bin/sdt.js',
        'eval',
        'humaneval',
        '--oracle',
        '--limit',
        '6',
        '--out',
        out,
        '--quiet',
        '--data',
        dataDir,
      ],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('6/6 tasks pass');
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(6);
    expect(Object.keys(lines[0]).sort()).toEqual(
      ['completion', 'error', 'error_kind', 'sample', 'status', 'task_id', 'time_ms'].sort(),
    );
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.pass_at_k['pass@1']).toBe(1);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| pass@1 | 100.00% |');
    const bad = spawnSync(
      'node',
      ['bin/sdt.js', 'eval', 'humaneval', '--data', join(outRoot, 'nowhere'), '--oracle'],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--data');
    const noModel = spawnSync('node', ['bin/sdt.js', 'eval', 'mbpp', '--data', dataDir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(noModel.status).toBe(2);
    expect(noModel.stderr).toMatch(/--ckpt|--oracle/);
  });
});
