/** Reading prompt files for `sdt sample --prompts FILE`. */
import { readFile } from 'node:fs/promises';
import { UserError } from '../../common/errors.ts';

export interface PromptItem {
  id: string;
  prompt: string;
}

/**
 * A JSONL file: each line a JSON string, or an object with "prompt" (and optionally "id"; default the
 * line number). Errors name the file and line.
 */
export async function readPromptFile(path: string): Promise<PromptItem[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read --prompts ${path}: ${(err as Error).message}`);
  }
  const items: PromptItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new UserError(
        `${path} line ${i + 1}: not JSON; --prompts wants JSONL with one {"prompt": "..."} or "..." per line.`,
      );
    }
    if (typeof v === 'string') items.push({ id: String(i + 1), prompt: v });
    else if (v && typeof v === 'object' && typeof (v as { prompt?: unknown }).prompt === 'string') {
      const o = v as { prompt: string; id?: unknown };
      items.push({ id: o.id === undefined ? String(i + 1) : String(o.id), prompt: o.prompt });
    } else {
      throw new UserError(`${path} line ${i + 1}: expected a string or an object with a "prompt" string.`);
    }
  }
  if (items.length === 0) throw new UserError(`${path}: no prompts found.`);
  return items;
}

/**
 * The prompts whose tokens leave room for `maxNew` generated ones in a `context`-token window, and how
 * many were dropped. Prompt sets cut from source files (function headers with long docstrings) can
 * exceed a small model's context; a request with one such prompt would fail as a whole.
 */
export function promptsThatFit<T extends PromptItem>(
  items: T[],
  encode: (text: string) => ArrayLike<number>,
  context: number,
  maxNew: number,
): { kept: T[]; dropped: number } {
  const room = context - Math.max(1, Math.min(maxNew, context - 1));
  const kept = items.filter((p) => encode(p.prompt).length <= room);
  return { kept, dropped: items.length - kept.length };
}
