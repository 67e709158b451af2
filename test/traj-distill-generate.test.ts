/**
 * Trajectory generation and verification: prompts cut from source text, a pool written in shards that a
 * rerun skips (and that refuses other settings), and the verifier (tree-sitter syntax; tests in the sandbox).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../engine/client.ts';
import { SandboxPool } from '../eval/sandbox/pool.ts';
import type { EvalTask } from '../eval/suites/types.ts';
import { functionBody, verify } from '../eval/verify.ts';
import {
  functionPrompts,
  generateTrajectories,
  readTrajectoryInput,
} from '../posttrain/trajectories/generate.ts';
import { replayFinal } from '../posttrain/trajectories/record.ts';
import { verdictValue } from '../schemas/trajectory.ts';
import { builtNative } from './native-build.ts';

// Empty when sdt-native cannot be built here (no CMake): the native tests skip.
const bin = builtNative() ?? '';
const haveNative = bin !== '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-trajgen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('function prompts', () => {
  it('cuts top-level headers with their docstrings', () => {
    const src = [
      'import os',
      '',
      'def add(a, b):',
      '    """Add two numbers."""',
      '    return a + b',
      '',
      'class K:',
      '    def m(self):',
      '        """Method: not top level."""',
      '        return 1',
      '',
      'async def fetch(url: str) -> bytes:',
      "    '''Fetch',",
      "    many lines.'''",
      '    pass',
      '',
      'def nodoc(x):',
      '    return x',
    ].join('\n');
    expect(functionPrompts(src)).toEqual([
      'def add(a, b):\n    """Add two numbers."""',
      "async def fetch(url: str) -> bytes:\n    '''Fetch',\n    many lines.'''",
    ]);
  });
});

describe('verifier', () => {
  it('checks syntax with tree-sitter', async () => {
    const ok = await verify('def f(x):\n    """Double."""\n', '    return 2 * x\n', undefined, undefined);
    expect(ok).toEqual({ syntaxOk: true, testsPass: null });
    expect(verdictValue(ok)).toBe(1);
    const bad = await verify('def f(x):\n    """Double."""\n', '    return (2 * x\n', undefined, undefined);
    expect(bad.syntaxOk).toBe(false);
    expect(verdictValue(bad)).toBe(0);
    // A body of comments (what a collapsed model writes) parses but does nothing.
    const hollow = await verify(
      'def f(x):\n    """Double."""\n',
      '# the the\n    # the the the\n',
      undefined,
      undefined,
    );
    expect(hollow.syntaxOk).toBe(false);
    // So does one of bare names and literals; an assignment, a call or a return does something.
    for (const [body, ok] of [
      ['    This\n    This\n', false],
      ['    x\n    1\n', false],
      ['    y = x\n', true],
      ['    print(x)\n', true],
      ['    return x\n', true],
      ['    if x:\n        This\n', true],
      // A nested function or class counts by its own body (an on-policy run converged on the first).
      ['\n    def __init__(self):\n        self._self._self\n', false],
      ['    @property\n    def g(self):\n        self.x\n', false],
      ['    class C:\n        """Doc."""\n', false],
      ['    def g():\n        return x\n    return g\n', true],
      ['    def g():\n        return x\n', true],
    ] as const) {
      expect(
        (await verify('def f(x):\n    """Double."""\n', body, undefined, undefined)).syntaxOk,
        body,
      ).toBe(ok);
    }
  });

  it('judges a function prompt by the body only', async () => {
    const head = 'def f(x):\n    """Double."""\n';
    // The model went on past the function with a broken line: only the body counts.
    expect(functionBody('    return 2 * x\nprint((\n', false)).toBe('    return 2 * x\n');
    expect((await verify(head, '    return 2 * x\nprint((\n', undefined, undefined)).syntaxOk).toBe(true);
    // Stopped at the token limit in the middle of a line: that line is dropped.
    expect(functionBody('    y = x\n    return (y +', true)).toBe('    y = x\n');
    expect((await verify(head, '    y = x\n    return (y +', undefined, undefined, true)).syntaxOk).toBe(
      true,
    );
    expect((await verify(head, '    y = x\n    return (y +', undefined, undefined, false)).syntaxOk).toBe(
      false,
    );
  });

  it('runs the task tests in the sandbox', async () => {
    const task: EvalTask = {
      id: 't',
      prompt: 'def f(x):\n',
      reference: '    return 2 * x\n',
      stop: ['\ndef '],
      program: (c) => `def f(x):\n${c}\nassert f(3) == 6\n`,
      source: (c) => `def f(x):\n${c}`,
    };
    const pool = new SandboxPool({ concurrency: 1 });
    const pass = await verify(task.prompt, '    return 2 * x\n', task, pool);
    const fail = await verify(task.prompt, '    return x + 2\n', task, pool);
    expect(pass).toEqual({ syntaxOk: true, testsPass: true });
    expect(fail).toEqual({ syntaxOk: true, testsPass: false });
    expect([verdictValue(pass), verdictValue(fail)]).toEqual([1, 0]);
  }, 60_000);
});

describe.skipIf(!haveNative)('traj generate', () => {
  it('writes K trajectories per prompt in shards, resumes, and refuses other settings', async () => {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        vocab_size: 40,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 64,
        attention_mode: 'block',
        block_size: 4,
        mask_token_id: 3,
        pad_token_id: 0,
        bos_token_id: 1,
        eos_token_id: 2,
      }),
    );
    const client = await EngineClient.start({ randomInit: { seed: 2, config }, binary: bin });
    const prompts = ['a', 'b', 'c'].map((id, i) => ({
      id,
      prompt: '',
      tokens: Int32Array.from([1, 10 + i, 20 + i, 30 + i]),
    }));
    const out = join(dir, 'pool');
    const settings = { maxNew: 8, block: 4, temperature: 1, eos: -1 };
    try {
      const opts = { client, prompts, settings, k: 2, outDir: out, shardPrompts: 2, batch: 2 };
      const shards = await generateTrajectories(opts);
      expect(shards.map((s) => s.slice(out.length + 1))).toEqual(['shard-00000.arrow', 'shard-00001.arrow']);
      const rows = await readTrajectoryInput(out);
      expect(rows.map((r) => r.id)).toEqual(['a#0', 'a#1', 'b#0', 'b#1', 'c#0', 'c#1']);
      for (const r of rows) {
        expect(r.tokens.length).toBe(8);
        expect(Array.from(replayFinal(r, 3))).toEqual(Array.from(r.tokens));
      }
      // Different seeds per k: the two trajectories of a prompt differ (40-token vocabulary, temperature 1).
      expect(Array.from(rows[0].tokens)).not.toEqual(Array.from(rows[1].tokens));
      // A rerun keeps the finished shards as they are.
      const before = statSync(shards[0]).mtimeMs;
      rmSync(shards[1]);
      await generateTrajectories(opts);
      expect(statSync(shards[0]).mtimeMs).toBe(before);
      expect((await readTrajectoryInput(out)).map((r) => [r.id, Array.from(r.tokens)])).toEqual(
        rows.map((r) => [r.id, Array.from(r.tokens)]),
      );
      await expect(generateTrajectories({ ...opts, k: 3 })).rejects.toThrow(/other settings/);
    } finally {
      await client.close();
    }
  }, 60_000);
});
