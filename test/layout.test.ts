/**
 * The layout rules of docs/architecture.md, checked on the source text so they cannot drift: where a command's
 * file lives (one registry, one naming rule) and which packages may import which.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands } from '../bin/commands.ts';
import { repoRoot } from '../common/native.ts';

const root = repoRoot;
const SKIP = new Set(['node_modules', 'runs', 'scratch', 'native', 'test', '.git']);

/** Every .ts file of the repository outside SKIP, as a path relative to the root. */
function sourceFiles(dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(relative(root, path));
  }
  return out;
}

/** Relative specifiers of static and dynamic imports and re-exports in a module's text. */
function relativeSpecifiers(text: string): string[] {
  return [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s*'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ]
    .map((m) => m[1])
    .filter((spec) => spec.startsWith('.'));
}

/** What a file imports, as paths relative to the root. */
const importsOf = (file: string): string[] =>
  relativeSpecifiers(readFileSync(join(root, file), 'utf8')).map((spec) =>
    normalize(join(dirname(file), spec)),
  );

/** The registry's entries with the file each one loads, read from bin/commands.ts's table. */
function registryFiles(): { name: string; file: string }[] {
  const text = readFileSync(join(root, 'bin/commands.ts'), 'utf8');
  return [...text.matchAll(/name: '([^']+)',[\s\S]*?load: \(\) => import\('([^']+)'\)/g)].map((m) => ({
    name: m[1],
    file: normalize(join('bin', m[2])),
  }));
}

/** Where the naming rule puts a command: its words joined by '-' (flags lose their dashes). */
const ruleFile = (name: string) =>
  `commands/${name
    .split(' ')
    .map((w) => w.replace(/^--/, ''))
    .join('-')}.ts`;

describe('one registry, one file-naming rule for commands', () => {
  const entries = registryFiles();

  it('reads every entry of the registry from its table', () => {
    expect(entries.map((e) => e.name)).toEqual(commands.map((c) => c.name));
  });

  it('puts every command in <package>/commands/<command words joined by ->.ts', () => {
    const wrong = entries
      .filter((e) => !/^[a-z]+\/commands\/[a-z-]+\.ts$/.test(e.file) || !e.file.endsWith(ruleFile(e.name)))
      .map((e) => `${e.name}: ${e.file} (rule: <package>/${ruleFile(e.name)})`);
    expect(wrong).toEqual([]);
  });

  it('lists every file that declares a command, and nothing else lives in a commands/ folder', () => {
    const listed = new Set(entries.map((e) => e.file));
    const declaring = sourceFiles().filter((f) =>
      /^export const command\b/m.test(readFileSync(join(root, f), 'utf8')),
    );
    expect(declaring.filter((f) => !listed.has(f))).toEqual([]);
    // A family's shared spec (a factory its commands call) sits beside them, named after the family's word.
    const families = new Set(entries.map((e) => `${e.name.split(' ')[0]}.ts`));
    const stray = sourceFiles().filter(
      (f) => /(^|\/)commands\/[^/]+$/.test(f) && !listed.has(f) && !families.has(f.split('/').at(-1)!),
    );
    expect(stray).toEqual([]);
  });
});

describe('import rules between packages', () => {
  const files = sourceFiles();
  const offending = (from: (f: string) => boolean, to: string) =>
    files.filter(from).flatMap((f) =>
      importsOf(f)
        .filter((t) => t.startsWith(to))
        .map((t) => `${f} -> ${t}`),
    );

  it('post-training imports nothing from eval/ outside its command modules (the verifier is a parameter)', () => {
    expect(
      offending((f) => f.startsWith('posttrain/') && !f.startsWith('posttrain/commands/'), 'eval/'),
    ).toEqual([]);
  });

  it('eval/ imports nothing from post-training', () => {
    expect(offending((f) => f.startsWith('eval/'), 'posttrain/')).toEqual([]);
  });

  it('pipelines/ imports nothing from post-training, eval/ or the trainer', () => {
    const up = ['posttrain/', 'eval/', 'trainer/'];
    expect(up.flatMap((to) => offending((f) => f.startsWith('pipelines/'), to))).toEqual([]);
  });

  it('the scan sees every form of import', () => {
    const text = [
      "import { a } from '../eval/a.ts';",
      'import {\n  b,\n  type C,\n} from "x";',
      "import type { D } from '../eval/d.ts';",
      "import {\n  e,\n  f,\n} from './e.ts';",
      "export { g } from '../eval/g.ts';",
      "import '../eval/side-effect.ts';",
      "const h = async () => (await import('../eval/h.ts')).h;",
      "import { i } from 'node:fs';",
    ].join('\n');
    expect(relativeSpecifiers(text)).toEqual([
      '../eval/a.ts',
      '../eval/d.ts',
      './e.ts',
      '../eval/g.ts',
      '../eval/side-effect.ts',
      '../eval/h.ts',
    ]);
  });
});
