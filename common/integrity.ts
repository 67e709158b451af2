/**
 * Every file a manifest or marker promises (dataset shards, checkpoint files, trajectory shards) is checked
 * against its recorded size and sha256 before it is used, once per file per process: a file damaged or edited
 * after it was written is refused with an IntegrityError naming it, instead of yielding changed data.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from './errors.ts';

export class IntegrityError extends UserError {
  override name = 'IntegrityError';
}

export interface RecordedFile {
  /** Absent where the manifest records only the hash (dataset shards). */
  bytes?: number;
  sha256: string;
}

/** path -> the (size, mtime, sha256) it was verified with; a rewritten file is checked again. */
const verified = new Map<string, string>();

const key = (size: number, mtimeMs: number, sha256: string) => `${size}:${mtimeMs}:${sha256}`;

function mismatch(path: string, what: string, fix: string): IntegrityError {
  return new IntegrityError(`${path} ${what}: it was damaged or changed after it was written; ${fix}`);
}

/** Check `path` against `expected`; `fix` says what to do (rebuild, pick another checkpoint). */
export async function verifyFile(path: string, expected: RecordedFile, fix: string): Promise<void> {
  const abs = resolve(path);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(abs);
  } catch {
    throw new IntegrityError(`${path} is missing; ${fix}`);
  }
  if (verified.get(abs) === key(st.size, st.mtimeMs, expected.sha256)) return;
  if (expected.bytes !== undefined && st.size !== expected.bytes)
    throw mismatch(path, `has ${st.size} bytes where ${expected.bytes} were recorded`, fix);
  const h = createHash('sha256');
  for await (const chunk of createReadStream(abs)) h.update(chunk as Buffer);
  if (h.digest('hex') !== expected.sha256) throw mismatch(path, 'does not match its recorded sha256', fix);
  verified.set(abs, key(st.size, st.mtimeMs, expected.sha256));
}

/** The same check for a file already read into memory (no second read). */
export async function verifyBuffer(
  path: string,
  body: Uint8Array,
  expected: RecordedFile,
  fix: string,
): Promise<void> {
  const abs = resolve(path);
  const st = await stat(abs);
  if (verified.get(abs) === key(st.size, st.mtimeMs, expected.sha256)) return;
  if (expected.bytes !== undefined && body.length !== expected.bytes)
    throw mismatch(path, `has ${body.length} bytes where ${expected.bytes} were recorded`, fix);
  if (createHash('sha256').update(body).digest('hex') !== expected.sha256)
    throw mismatch(path, 'does not match its recorded sha256', fix);
  verified.set(abs, key(st.size, st.mtimeMs, expected.sha256));
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
