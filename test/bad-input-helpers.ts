/**
 * Table-driven bad-input checks: each case runs one command line in-process (bin/main.ts) and asserts its
 * exit code, that stderr names the fault, and that nothing was written or lost: every file under the work
 * directory is byte-for-byte what it was, and no file appeared.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, vi } from 'vitest';
import { main } from '../bin/main.ts';

export interface BadInputCase {
  name: string;
  argv: string[];
  /** Default 2 (a UserError). */
  code?: number;
  /** What stderr must say. */
  message: RegExp;
}

/** Relative path -> sha256 of every file under dir (directories as "dir/"). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) {
        out[`${relative(dir, p)}/`] = 'dir';
        walk(p);
      } else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

export async function runCase(c: BadInputCase, work: string): Promise<void> {
  const before = snapshot(work);
  let stderr = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  let code: number;
  try {
    code = await main(c.argv);
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
  expect(code, `${c.name}: ${stderr}`).toBe(c.code ?? 2);
  expect(stderr, c.name).toMatch(c.message);
  expect(stderr, c.name).not.toMatch(/internal error|\n\s+at /);
  expect(snapshot(work), `${c.name} wrote or changed files`).toEqual(before);
}
