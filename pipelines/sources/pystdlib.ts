import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { readFileRecord, statFileRecord } from './directory.ts';
import { readAhead } from './readahead.ts';
import type { SourceRecord } from './types.ts';

/** One file of the default corpus. `split` is "validation" for test folders, which are held out. */
export interface CorpusFile {
  path: string;
  /** Path relative to the corpus root, with forward slashes: the stable id of the file. */
  rel: string;
  split: 'train' | 'validation';
}

let cachedRoot: string | undefined;

/** The standard library directory of the machine's python3, found through sysconfig. */
export function pythonStdlibDir(python = process.env.SDT_PYTHON ?? 'python3'): string {
  if (cachedRoot) return cachedRoot;
  try {
    cachedRoot = execFileSync(python, ['-c', 'import sysconfig; print(sysconfig.get_paths()["stdlib"])'], {
      encoding: 'utf8',
    }).trim();
  } catch (err) {
    throw new UserError(
      `could not ask ${python} for its standard library (${(err as Error).message.split('\n')[0]}); install python3 or pass --source.`,
    );
  }
  return cachedRoot;
}

const SKIP_DIRS = new Set(['site-packages', 'dist-packages', '__pycache__', 'config-3', 'lib-dynload']);

/** A path is held out when any of its folders is a test folder (test, tests, idle_test, ...). */
export function isTestPath(rel: string): boolean {
  const parts = rel.split('/');
  return parts
    .slice(0, -1)
    .some((p) => p === 'test' || p === 'tests' || p.endsWith('_test') || p === 'testing');
}

/** Every .py file under the stdlib, sorted by relative path so the corpus order is stable. */
export async function listStdlibCorpus(root = pythonStdlibDir()): Promise<CorpusFile[]> {
  const out: CorpusFile[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (SKIP_DIRS.has(e.name) || e.name.startsWith('config-')) continue;
        await walk(full);
      } else if (e.isFile() && e.name.endsWith('.py')) {
        const rel = relative(root, full).split(sep).join('/');
        out.push({ path: full, rel, split: isTestPath(rel) ? 'validation' : 'train' });
      }
    }
  }
  await walk(root);
  return out;
}

/**
 * The default corpus as records: train files in path order, test folders held out as validation. Only
 * the `maxValidationFiles` validation files with the smallest stable hash are kept (a few hundred files
 * measure loss well; thousands only slow evaluation); the rest are rejected as "validation-cap" so they
 * never leak into train either.
 */
export async function* openStdlibSource(
  root = pythonStdlibDir(),
  maxValidationFiles = 200,
  maxBytes = Number.MAX_SAFE_INTEGER,
  defer = false,
): AsyncGenerator<SourceRecord> {
  const files = await listStdlibCorpus(root);
  const heldOut = files
    .filter((f) => f.split === 'validation')
    .map((f) => ({ rel: f.rel, h: createHash('sha256').update(f.rel).digest('hex') }))
    .sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
  const keptValidation = new Set(heldOut.slice(0, Math.max(0, maxValidationFiles)).map((f) => f.rel));
  const load = async (f: CorpusFile): Promise<SourceRecord> => {
    if (f.split === 'validation' && !keptValidation.has(f.rel)) {
      return {
        id: f.rel,
        origin: f.rel,
        language: 'python',
        split: 'validation',
        reject: { reason: 'validation-cap', detail: `beyond --max-validation-files ${maxValidationFiles}` },
      };
    }
    const extra = { split: f.split, language: 'python' };
    return defer
      ? statFileRecord(root, f.rel, maxBytes, extra)
      : readFileRecord(root, f.rel, maxBytes, extra);
  };
  if (defer) {
    for (const f of files) yield await load(f);
    return;
  }
  yield* readAhead(files, load);
}
