/** The manifest of a `sdt data synth` directory: the files it lists with their sizes and sha256. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../common/errors.ts';
import { sha256Hex } from '../steps/hash.ts';

export const SYNTH_MANIFEST = 'manifest.json';

/** Check a synth directory's files against its manifest (sizes and sha256), naming the file at fault. */
export async function verifySynthDir(dir: string): Promise<void> {
  const manifestPath = join(dir, SYNTH_MANIFEST);
  if (!existsSync(manifestPath))
    throw new UserError(
      `${dir} has no ${SYNTH_MANIFEST}; generate the tasks with \`sdt data synth --out ${dir}\`.`,
    );
  const m = JSON.parse(await readFile(manifestPath, 'utf8')) as {
    files: Record<string, { bytes: number; sha256: string }>;
  };
  for (const [name, f] of Object.entries(m.files)) {
    const path = join(dir, name);
    if (!existsSync(path))
      throw new UserError(`${path} is missing; rerun \`sdt data synth --out ${dir} --overwrite\`.`);
    const body = await readFile(path);
    if (body.length !== f.bytes || sha256Hex(body) !== f.sha256)
      throw new UserError(
        `${path} does not match ${SYNTH_MANIFEST} (size or sha256); it was changed or damaged: rerun \`sdt data synth --out ${dir} --overwrite\`.`,
      );
  }
}
