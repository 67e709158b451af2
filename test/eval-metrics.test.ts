import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { niceTicks } from '../common/svg.ts';
import { fitPrompt, type SamplerClientLike } from '../eval/generators/model.ts';
import { meanPassAtK, passAtK } from '../eval/passk.ts';
import { gridSettings, runGrid, settingLabel } from '../eval/report/grid.ts';
import { chooseQuality, type ParetoRow, paretoFront, paretoMarkdown } from '../eval/report/pareto.ts';
import { paretoSvg } from '../eval/report/svg.ts';
import { isSyntaxValid, syntaxValidRate } from '../eval/report/syntax.ts';
import { HUMANEVAL_STOP, MBPP_STOP, truncateAtStop } from '../eval/suites/stop.ts';
import type { EvalTask } from '../eval/suites/types.ts';
import { expectWellFormedXml } from './xml-check.ts';

/** Exact 1 - C(n-c,k)/C(n,k) with big integers: the reference the stable product form must match. */
function exactPassAtK(n: number, c: number, k: number): number {
  const choose = (a: number, b: number): bigint => {
    if (b < 0 || b > a) return 0n;
    let r = 1n;
    for (let i = 1; i <= b; i++) r = (r * BigInt(a - b + i)) / BigInt(i);
    return r;
  };
  const num = choose(n - c, k);
  const den = choose(n, k);
  // Keep 15 significant digits of the ratio.
  const scaled = (num * 10n ** 15n) / den;
  return 1 - Number(scaled) / 1e15;
}

describe('pass@k', () => {
  it('matches values worked out by hand', () => {
    expect(passAtK(5, 2, 1)).toBeCloseTo(0.4, 12); // c/n
    expect(passAtK(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 12); // 1 - C(3,2)/C(5,2)
    expect(passAtK(10, 3, 5)).toBeCloseTo(1 - 21 / 252, 12); // 1 - C(7,5)/C(10,5)
    expect(passAtK(3, 2, 2)).toBe(1); // fewer failures than k: some passing sample is always drawn
    expect(passAtK(10, 0, 10)).toBe(0);
    expect(passAtK(1, 1, 1)).toBe(1);
  });

  it('agrees with exact big-integer binomials where the naive formula overflows', () => {
    for (const [n, c, k] of [
      [200, 3, 100],
      [200, 17, 10],
      [1000, 1, 1],
      [500, 250, 100],
    ]) {
      expect(passAtK(n, c, k)).toBeCloseTo(exactPassAtK(n, c, k), 10);
    }
  });

  it('rejects impossible inputs and averages over tasks', () => {
    expect(() => passAtK(5, 6, 1)).toThrow(RangeError);
    expect(() => passAtK(5, 1, 6)).toThrow(/exceeds/);
    const m = meanPassAtK(
      [
        { n: 4, c: 1 },
        { n: 4, c: 0 },
      ],
      [1, 2, 10],
    );
    expect(m['pass@1']).toBeCloseTo((0.25 + 0) / 2, 12);
    expect(m['pass@2']).toBeCloseTo((1 - 3 / 6) / 2, 12);
    expect(m['pass@10']).toBeUndefined();
  });
});

describe('stop sequences', () => {
  it('cut a HumanEval body at the next top-level statement, never inside indented code', () => {
    const body = '    x = 1\n    # a comment\n    def inner():\n        return 2\n    return x\n';
    expect(truncateAtStop(body, HUMANEVAL_STOP)).toBe(body);
    expect(truncateAtStop(`${body}\ndef other():\n    pass\n`, HUMANEVAL_STOP)).toBe(`${body}`);
    expect(truncateAtStop(`${body}\nif __name__ == "__main__":\n    main()`, HUMANEVAL_STOP)).toBe(body);
    expect(truncateAtStop(`${body}print(f(1))`, HUMANEVAL_STOP)).toBe(body.slice(0, -1));
    expect(truncateAtStop(`${body}# tests\nassert f()`, HUMANEVAL_STOP)).toBe(body.slice(0, -1));
    expect(truncateAtStop(`${body}class A:\n  pass`, HUMANEVAL_STOP)).toBe(body.slice(0, -1));
  });

  it('take the earliest stop, and keep the ones asked for', () => {
    expect(truncateAtStop('def f():\n    return 1\n[DONE]\n[BEGIN]\nxx', MBPP_STOP)).toBe(
      'def f():\n    return 1\n',
    );
    expect(truncateAtStop('a\nb\nc', ['\n'], ['\n'])).toBe('a\n');
    expect(truncateAtStop('no stop here', HUMANEVAL_STOP)).toBe('no stop here');
  });
});

describe('syntax validity (tree-sitter)', () => {
  it('accepts valid Python and rejects ERROR or MISSING nodes', () => {
    expect(isSyntaxValid('def f(x):\n    return [i * 2 for i in x]\n')).toBe(true);
    expect(isSyntaxValid('def f(x:\n    return x\n')).toBe(false); // ERROR
    expect(isSyntaxValid('x = (1, 2')).toBe(false); // MISSING ")"
    expect(syntaxValidRate(['a = 1', 'a = (', 'b = 2', 'def'])).toBe(0.5);
    expect(syntaxValidRate([])).toBeNull();
  });
});

const row = (label: string, x: number, pass1: number, syntax: number | null = null): ParetoRow => ({
  label,
  mode: 'diffusion',
  block: 8,
  threshold: 0.9,
  tokensPerSecond: x,
  forwardPassesPerToken: null,
  pass1,
  syntaxValid: syntax,
  valLoss: null,
});

describe('Pareto front', () => {
  it('keeps exactly the non-dominated points of a hand-made set', () => {
    const pts = [
      { x: 1, y: 0.9 }, // 0: slowest, best: front
      { x: 2, y: 0.8 }, // 1: front
      { x: 2, y: 0.5 }, // 2: dominated by 1
      { x: 3, y: 0.8 }, // 3: front, dominates 1? same y, faster: yes, 1 is dominated
      { x: 5, y: 0.2 }, // 4: fastest: front
      { x: 4, y: 0.1 }, // 5: dominated by 4
      { x: 5, y: 0.2 }, // 6: equal to 4: kept as well
    ];
    expect(paretoFront(pts)).toEqual([0, 3, 4, 6]);
    expect(paretoFront([])).toEqual([]);
    expect(paretoFront([{ x: 1, y: 1 }])).toEqual([0]);
  });

  it('switches the quality axis to syntax validity when pass@1 is near zero everywhere', () => {
    const small = [row('a', 10, 0, 0.7), row('b', 20, 0.01, 0.4)];
    expect(chooseQuality(small, 'auto')).toBe('syntax');
    expect(chooseQuality([row('a', 10, 0.3, 0.9), row('b', 20, 0.1, 0.8)], 'auto')).toBe('pass1');
    expect(chooseQuality(small, 'pass1')).toBe('pass1');
    const md = paretoMarkdown(small, 'syntax', 'humaneval');
    expect(md.split('\n').filter((l) => l.startsWith('| ★')).length).toBe(2);
  });

  it('renders a well-formed SVG with the front marked', () => {
    const rows = [row('AR', 40, 0.3), row('B8 <t0.9>', 70, 0.25), row('B16', 60, 0.1), row('B32', 150, 0.05)];
    const svg = paretoSvg(rows, 'pass1', 'Speed & quality');
    expectWellFormedXml(svg);
    expect(svg.match(/class="front-point"/g)?.length).toBe(3);
    expect(svg.match(/class="point"/g)?.length).toBe(1);
    expect(svg).toContain('B8 &lt;t0.9&gt;');
    expect(svg).toContain('class="front"');
  });

  it('chooses round axis ticks that cover the data', () => {
    expect(niceTicks(0, 1, 5, true)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 137, 5, true)).toEqual([0, 50, 100, 150]);
    const t = niceTicks(0, 0.013, 5, true);
    expect(t[0]).toBe(0);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(0.013);
  });
});

describe('prompt fitting for the model context', () => {
  const special = { fimPrefix: -1, fimSuffix: -2, fimMiddle: -3 };
  const ids = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);

  it('keeps the end of a plain prompt', () => {
    expect(fitPrompt(ids(5), null, 8, special)).toEqual({ ids: ids(5), cut: false });
    expect(Array.from(fitPrompt(ids(10), null, 4, special).ids)).toEqual([6, 7, 8, 9]);
  });

  it('starts a plain prompt with <|bos|>, as the engine client does, inside the room', () => {
    expect(Array.from(fitPrompt(ids(3, 10), null, 8, special, 1).ids)).toEqual([1, 10, 11, 12]);
    const cut = fitPrompt(ids(10), null, 4, special, 1);
    expect(cut.cut).toBe(true);
    expect(Array.from(cut.ids)).toEqual([1, 7, 8, 9]);
    expect(fitPrompt(ids(3), null, 4, special, 1).cut).toBe(false);
  });

  it('keeps the text nearest the gap of a FIM prompt, and its markers', () => {
    const fit = fitPrompt(ids(6), ids(6, 100), 9, special); // 15 tokens into 9: drop 6
    expect(fit.cut).toBe(true);
    expect(Array.from(fit.ids)).toEqual([-1, 3, 4, 5, -2, 100, 101, 102, -3]);
    expect(fitPrompt(ids(2), ids(2, 100), 9, special).cut).toBe(false);
  });
});

describe('report grid (fake sampler)', () => {
  it('measures speed, pass@1 and syntax validity per setting', async () => {
    const task = (name: string, a: number, b: number): EvalTask => ({
      id: name,
      prompt: `def ${name}(a, b):\n`,
      reference: '    return a + b\n',
      stop: HUMANEVAL_STOP,
      program: (c) => `def ${name}(a, b):\n${c}\nassert ${name}(${a}, ${b}) == ${a + b}\n`,
      source: (c) => `def ${name}(a, b):\n${c}`,
    });
    const tasks = [task('f', 1, 2), task('g', 3, 4)];
    const orders = new Set<string | undefined>();
    const client: SamplerClientLike = {
      // Block 8 answers right slowly; block 32 answers fast with broken syntax; AR is right and slowest.
      async generate(prompts, s) {
        orders.add(s.order);
        const right = s.block !== 32;
        return {
          seconds: s.mode === 'ar' ? 4 : s.block === 8 ? 1 : 0.25,
          completions: prompts.map(() => ({
            text: right ? '    return a + b\n' : '    return (a +\n',
            tokens: 5,
            forwardPasses: s.mode === 'ar' ? 5 : 2,
          })),
        };
      },
      async close() {},
    };
    const outDir = mkdtempSync(join(tmpdir(), 'sdt-grid-'));
    const rows = await runGrid({
      client,
      ckpt: 'fake',
      suite: 'toy',
      tasks,
      settings: gridSettings([8, 32], [0.9], true, [], ['confidence', 'left-to-right']),
      base: { maxNew: 16, temperature: 0, topP: 1, seed: 0 },
      concurrency: 2,
      valLoss: 1.5,
      outDir,
      quiet: true,
    });
    expect(rows.map((r) => r.label)).toEqual([
      'B8 t0.9',
      'B8 t0.9 left-to-right',
      'B32 t0.9',
      'B32 t0.9 left-to-right',
      'AR',
    ]);
    expect(rows.map((r) => r.order)).toEqual([
      'confidence',
      'left-to-right',
      'confidence',
      'left-to-right',
      null,
    ]);
    expect([...orders]).toEqual([undefined, 'left-to-right']);
    expect(rows.map((r) => r.pass1)).toEqual([1, 1, 0, 0, 1]);
    expect(rows.map((r) => r.syntaxValid)).toEqual([1, 1, 0, 0, 1]);
    expect(rows.map((r) => r.tokensPerSecond)).toEqual([10, 10, 40, 40, 2.5]);
    expect(rows.map((r) => r.forwardPassesPerToken)).toEqual([0.4, 0.4, 0.4, 0.4, 1]);
    expect(rows[0].valLoss).toBe(1.5);
    const front = paretoFront(rows.map((r) => ({ x: r.tokensPerSecond, y: r.pass1 })));
    expect(front.map((i) => rows[i].label)).toEqual([
      'B8 t0.9',
      'B8 t0.9 left-to-right',
      'B32 t0.9',
      'B32 t0.9 left-to-right',
    ]);
    rmSync(outDir, { recursive: true, force: true });
  });

  it('error budgets: one row per budget, each sent to the sampler and recorded; 0 is no budget', async () => {
    const settings = gridSettings([16], [0.9], false, [], ['left-to-right'], [0, 0.5]);
    expect(settings.map((s) => settingLabel(s))).toEqual([
      'B16 t0.9 left-to-right',
      'B16 t0.9 left-to-right E0.5',
    ]);
    const budgets: (number | undefined)[] = [];
    const client: SamplerClientLike = {
      async generate(prompts, s) {
        budgets.push(s.errorBudget);
        return {
          seconds: 1,
          completions: prompts.map(() => ({ text: '    return a + b\n', tokens: 5, forwardPasses: 2 })),
        };
      },
      async close() {},
    };
    const task: EvalTask = {
      id: 'f',
      prompt: 'def f(a, b):\n',
      reference: '    return a + b\n',
      stop: HUMANEVAL_STOP,
      program: (c) => `def f(a, b):\n${c}\nassert f(1, 2) == 3\n`,
      source: (c) => `def f(a, b):\n${c}`,
    };
    const outDir = mkdtempSync(join(tmpdir(), 'sdt-grid-'));
    const rows = await runGrid({
      client,
      ckpt: 'fake',
      suite: 'toy',
      tasks: [task],
      settings,
      base: { maxNew: 16, temperature: 0, topP: 1, seed: 0 },
      concurrency: 1,
      valLoss: null,
      outDir,
      quiet: true,
    });
    expect(budgets).toEqual([undefined, 0.5]);
    expect(rows.map((r) => r.errorBudget)).toEqual([undefined, 0.5]);
    rmSync(outDir, { recursive: true, force: true });
  });
});
