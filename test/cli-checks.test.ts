/**
 * The checks every command gets from its CommandSpec (common/cli.ts) before it runs: numeric ranges, output
 * paths, conflicting flags, extra arguments; and, over the whole registry, that every command's defaults
 * pass its own declared ranges.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../bin/commands.ts';
import { type CommandSpec, parseCommandArgs, rangeProblem } from '../common/cli.ts';
import { repoRoot } from '../common/native.ts';
import { tempDir } from './data-helpers.ts';

const spec: CommandSpec = {
  name: 'demo check',
  summary: 'a command for the checks',
  positionals: [{ name: 'IN', description: 'input file', required: true }],
  options: {
    'vocab-size': { type: 'number', description: 'ids', default: 8, min: 1, integer: true },
    fraction: { type: 'number', description: 'share', default: 0.5, min: 0, max: 1 },
    out: { type: 'string', description: 'output file', output: 'file' },
    report: { type: 'string', description: 'report file', output: 'file' },
    dir: { type: 'string', description: 'output dir', output: 'dir' },
    ar: { type: 'boolean', description: 'autoregressive' },
    block: { type: 'number', description: 'block size' },
    orders: { type: 'list', description: 'orders', choices: ['left', 'right'], default: ['left'] },
  },
  conflicts: [['ar', 'block', 'an AR model decodes one token at a time']],
  run: async () => 0,
};

const parse = (argv: string[]) => () => parseCommandArgs(spec, argv);

let work: string;
beforeAll(async () => {
  work = await tempDir('cli-checks');
  writeFileSync(join(work, 'in.txt'), 'x');
  mkdirSync(join(work, 'adir'));
});

describe('numeric ranges', () => {
  it('names the flag and the range, negative values included (never "ambiguous")', () => {
    expect(parse(['IN', '--vocab-size', '-5'])).toThrow(
      'sdt demo check: --vocab-size must be an integer >= 1; got -5.',
    );
    expect(parse(['IN', '--vocab-size', '2.5'])).toThrow('--vocab-size must be an integer >= 1; got 2.5');
    expect(parse(['IN', '--fraction', '1.5'])).toThrow('--fraction must be a number in [0, 1]; got 1.5');
    expect(parse(['IN', '--fraction', '-.5'])).toThrow('--fraction must be a number in [0, 1]; got -0.5');
    expect(parseCommandArgs(spec, ['IN', '--vocab-size', '3']).opts['vocab-size']).toBe(3);
  });

  it('every numeric flag of every command declares its range', async () => {
    const unchecked: string[] = [];
    for (const entry of commands) {
      const { command } = await entry.load();
      for (const [name, o] of Object.entries(command.options))
        if (o.type === 'number' && o.min === undefined && o.max === undefined)
          unchecked.push(`sdt ${command.name} --${name}`);
    }
    expect(unchecked).toEqual([]);
  }, 60_000);

  it('every command of the registry has defaults inside its own ranges', async () => {
    for (const entry of commands) {
      const { command } = await entry.load();
      for (const [name, o] of Object.entries(command.options))
        if (o.type === 'number' && typeof o.default === 'number')
          expect(rangeProblem(name, o, o.default), `sdt ${command.name} --${name}`).toBeNull();
    }
  }, 60_000);
});

describe('arguments and conflicts', () => {
  it('refuses extra positional arguments', () => {
    expect(parse(['a', 'b'])).toThrow('unexpected argument "b" (it takes IN; options start with --)');
  });
  it('checks every item of a list against its choices', () => {
    expect(parseCommandArgs(spec, ['IN', '--orders', 'right,left']).opts.orders).toEqual(['right', 'left']);
    expect(parse(['IN', '--orders', 'left', '--orders', 'up'])).toThrow(
      'every item of --orders must be one of left, right; got "up".',
    );
  });
  it('refuses conflicting flags with the reason', () => {
    expect(parse(['IN', '--ar', '--block', '4'])).toThrow(
      '--ar and --block cannot be used together: an AR model decodes one token at a time.',
    );
    expect(parse(['IN', '--block', '4']).bind(null)).not.toThrow();
  });
});

describe('output paths, before any work', () => {
  it('refuses a directory where a file is expected, a path under a file, an input, two equal outputs', () => {
    const input = join(work, 'in.txt');
    expect(parse([input, '--out', join(work, 'adir')])).toThrow(
      /--out .*adir is a directory; give a file path/,
    );
    expect(parse([input, '--out', join(input, 'x.json')])).toThrow(
      /in\.txt is a file, so nothing can be written/,
    );
    expect(parse([input, '--out', input])).toThrow(/--out .* is also the input IN; write to another path/);
    expect(parse([input, '--out', join(work, 'o.json'), '--report', join(work, 'o.json')])).toThrow(
      /--report and --out are the same path/,
    );
    expect(parse([input, '--dir', input])).toThrow(/is a file; give a directory/);
    expect(parse([input, '--out', join(work, 'new', 'o.json')])).not.toThrow();
  });
});

describe('interrupts', () => {
  it('Ctrl-C exits 130 from a command without its own handler', async () => {
    const out = join(work, 'tok.json');
    const child = spawn('node', [join(repoRoot, 'bin', 'sdt.js'), 'tokenizer', 'train', '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Its first progress line says the work has started.
    await new Promise<void>((res) => child.stderr.once('data', () => res()));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(code).toBe(130);
  }, 60_000);
});

describe('a reader that stops early', () => {
  it('exits 0 without an error when its stdout and stderr are closed before it writes', async () => {
    const child = spawn('node', [join(repoRoot, 'bin', 'sdt.js'), '--help'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Closed before the CLI has loaded, so its first write meets a closed pipe (EPIPE), as under `| head -0`.
    child.stdout.destroy();
    child.stderr.destroy();
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(code).toBe(0);
  }, 60_000);
});
