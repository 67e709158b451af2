import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allCompositions } from '../pipelines/synth/families.ts';
import {
  compositionSplits,
  draftTask,
  generateTasks,
  leakageReport,
  runReferences,
  type SynthTask,
} from '../pipelines/synth/generate.ts';

const SPLITS = { seed: 1, validation: 0.05, test: 0.1 };
const COUNTS = { train: 1500, validation: 150, test: 150 };

/** Runs every task's reference against its own tests in one Python process; returns the failing ids. */
function failingReferences(tasks: SynthTask[]): string[] {
  const script = [
    'import json, sys',
    'failed = []',
    'for t in json.load(sys.stdin):',
    '    ns = {}',
    '    try:',
    '        exec(t["prompt"] + t["body"] + "\\n\\n\\n" + t["test"] + "\\ncheck(" + t["entry"] + ")\\n", ns)',
    '    except BaseException as e:',
    '        failed.append(t["id"])',
    'print(json.dumps(failed))',
  ].join('\n');
  const r = spawnSync('python3', ['-I', '-c', script], {
    input: JSON.stringify(
      tasks.map((t) => ({ id: t.id, prompt: t.prompt, body: t.body, test: t.test, entry: t.entry })),
    ),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

describe('synthetic code world', async () => {
  const result = await generateTasks({ seed: 3, splits: SPLITS, counts: COUNTS });
  const all = [...result.tasks.train, ...result.tasks.validation, ...result.tasks.test];

  it('is deterministic: the same seed gives the same tasks, another seed other tasks', async () => {
    for (let i = 0; i < 50; i++) expect(draftTask(5, i)).toEqual(draftTask(5, i));
    const again = await generateTasks({
      seed: 3,
      splits: SPLITS,
      counts: { train: 200, validation: 20, test: 20 },
    });
    expect(again.tasks.train).toEqual(result.tasks.train.slice(0, 200));
    const other = Array.from({ length: 50 }, (_, i) => draftTask(6, i).prompt);
    const same = other.filter((p, i) => p === draftTask(5, i).prompt).length;
    expect(same).toBeLessThan(5);
  });

  it('fills each split with its count and routes every task by its composition', () => {
    const splits = compositionSplits(SPLITS);
    for (const s of ['train', 'validation', 'test'] as const) {
      expect(result.tasks[s]).toHaveLength(COUNTS[s]);
      for (const t of result.tasks[s]) expect(splits.get(t.composition)).toBe(s);
    }
  });

  it('holds out whole compositions, each made of primitives that train sees', () => {
    const splits = compositionSplits(SPLITS);
    const keys = allCompositions().map((c) => c.key);
    expect(new Set(keys).size).toBe(keys.length);
    const heldOut = keys.filter((k) => splits.get(k) !== 'train');
    expect(heldOut.length).toBeGreaterThan(keys.length * 0.08);
    const trainSlots = new Set(
      keys
        .filter((k) => splits.get(k) === 'train')
        .flatMap((k) =>
          k
            .split(':')
            .slice(1)
            .map((s, i) => `${k.split(':')[0]}:${i}:${s}`),
        ),
    );
    for (const k of heldOut) {
      const [family, ...slots] = k.split(':');
      for (const [i, s] of slots.entries()) expect(trainSlots.has(`${family}:${i}:${s}`), k).toBe(true);
    }
  });

  it('proves there is no leakage, and the proof catches a planted leak', () => {
    expect(leakageReport(result.tasks)).toEqual({
      heldOutCompositionsInTrain: 0,
      heldOutBodiesInTrain: 0,
      unseenPrimitives: [],
    });
    const planted = { ...result.tasks, train: [...result.tasks.train, result.tasks.test[0]] };
    const report = leakageReport(planted);
    expect(report.heldOutCompositionsInTrain).toBeGreaterThanOrEqual(1);
    expect(report.heldOutBodiesInTrain).toBeGreaterThanOrEqual(1);
  });

  it('every reference passes its own tests, and a wrong body fails them', () => {
    expect(failingReferences(all)).toEqual([]);
    // Independent check that the tests discriminate: a body returning a constant fails nearly all.
    const wrong = all.slice(0, 200).map((t) => ({ ...t, body: '\n    return 0' }));
    expect(failingReferences(wrong).length).toBeGreaterThan(190);
  });

  it('gives every task >= 3 test cases with differing outputs', () => {
    for (const t of all) {
      expect(t.cases.length).toBeGreaterThanOrEqual(3);
      const outputs = new Set(t.cases.map((c) => c.expected));
      const yesNo = [...outputs].every((o) => o === 'True' || o === 'False');
      expect(outputs.size, t.id).toBeGreaterThanOrEqual(yesNo ? 2 : 3);
    }
  });

  it('varies bodies: one docstring shape is written in several styles and names', () => {
    const styles = new Map<string, Set<string>>();
    for (const t of all) {
      const set = styles.get(t.family) ?? new Set<string>();
      set.add(t.style);
      styles.set(t.family, set);
    }
    for (const [family, set] of styles) expect(set.size, family).toBeGreaterThanOrEqual(2);
    const bodies = new Set(result.tasks.train.map((t) => t.body));
    expect(bodies.size).toBeGreaterThan(result.tasks.train.length * 0.8);
  });

  it('draws many distinct tasks (prompts), with no duplicates kept', () => {
    const prompts = new Set<string>();
    for (let i = 0; i < 100_000; i++) prompts.add(draftTask(9, i).prompt);
    expect(prompts.size).toBeGreaterThan(95_000);
    expect(new Set(all.map((t) => t.prompt)).size).toBe(all.length);
  });

  it('drops a hostile or broken reference with its id and reason, never counting it', async () => {
    const r = await generateTasks({
      seed: 3,
      splits: SPLITS,
      counts: { train: 20, validation: 0, test: 0 },
      mutateDraft: (d, i) =>
        i === 0
          ? { ...d, body: '\n    while True:\n        pass' }
          : i === 1
            ? { ...d, body: '\n    return 1 // 0' }
            : d,
    });
    const byId = new Map(r.dropped.map((d) => [d.id, d]));
    expect(byId.get('synth/0')?.reason).toBe('reference-error');
    expect(byId.get('synth/0')?.detail).toMatch(/timeout/);
    expect(byId.get('synth/1')?.detail).toMatch(/ZeroDivisionError/);
    expect(r.tasks.train.map((t) => t.id)).not.toContain('synth/0');
    expect(r.tasks.train.map((t) => t.id)).not.toContain('synth/1');
    expect(r.tasks.train).toHaveLength(20);
  }, 20_000);

  it('reports a reference whose output is not a literal', async () => {
    const [res] = await runReferences([
      { id: 'obj', code: 'def f(x):\n    return object()\n', entry: 'f', inputs: [[1]] },
    ]);
    expect('error' in res && res.error).toMatch(/not a literal/);
  });
});
