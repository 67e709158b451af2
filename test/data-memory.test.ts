import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pythonStdlibDir } from '../pipelines/sources/pystdlib.ts';
import { DEFAULT_SIZE_LIMITS } from '../pipelines/steps/filters.ts';
import { DEFAULT_MINHASH } from '../pipelines/steps/minhash.ts';
import { startExecutor } from '../pipelines/steps/pool.ts';
import { toWorkItem } from '../pipelines/steps/record.ts';
import { tsAddonPath } from '../pipelines/steps/ts-addon.ts';
import { smallTokenizer, tempDir } from './data-helpers.ts';

describe('bounded memory', () => {
  it.each([
    ['node-tree-sitter', undefined],
    ['the tree-sitter addon', tsAddonPath()],
  ])(
    'a worker parsing the same files again and again through %s does not grow (trees are freed)',
    async (_, tsAddon) => {
      const dir = await tempDir('mem');
      const tokenizerPath = await smallTokenizer(dir, 300);
      // About 1.5 MB per round, so a leak (~20-28 bytes per parsed byte) stands far above GC noise.
      const files = ['email', 'json', 'logging', 'asyncio', 'http'].flatMap((pkg) => {
        const root = join(pythonStdlibDir(), pkg);
        return readdirSync(root)
          .filter((f) => f.endsWith('.py'))
          .map((f) => new Uint8Array(readFileSync(join(root, f))));
      });
      const perRound = files.reduce((n, f) => n + f.length, 0);
      const ex = await startExecutor(1, {
        limits: DEFAULT_SIZE_LIMITS,
        minhash: DEFAULT_MINHASH,
        tokenizerPath,
        tsAddon,
      });
      const rss: number[] = [];
      try {
        for (let round = 0; round < 8; round++) {
          const inflight: Promise<unknown>[] = [];
          for (let i = 0; i < files.length; i += 8) {
            const batch = files
              .slice(i, i + 8)
              .map((bytes, j) =>
                toWorkItem(i + j, { id: `${round}/${i + j}`, origin: 'x', language: 'python', bytes }),
              );
            inflight.push(
              ex.run(
                batch,
                batch.map(() => true),
              ),
            );
            if (inflight.length >= 4) await inflight.shift();
          }
          await Promise.all(inflight);
          rss.push(process.memoryUsage().rss);
        }
      } finally {
        await ex.close();
        await rm(dir, { recursive: true, force: true });
      }
      // Unfreed trees cost ~20-28 bytes per source byte (measured): 5 rounds would add >= 100x a round.
      const growth = rss[7] - rss[2];
      expect(growth).toBeLessThan(5 * perRound * 8);
    },
  );
});
