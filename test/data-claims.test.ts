import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { CLAIM_GROUP_BYTES, ClaimPages, claimGroup, unclaimedTail } from '../pipelines/steps/claims.ts';
import { mulberry32 as rng } from './prng.ts';

/** Runs one side (owner forwards, helper backwards) to the end, as a worker does; returns [lo, hi). */
function runSide(
  c: ReturnType<ClaimPages['take']>,
  sizes: number[],
  backwards: boolean,
  groups: [number, number][] = [],
): [number, number] {
  let lo = backwards ? sizes.length : 0;
  let hi = lo;
  for (;;) {
    const g = claimGroup(c, sizes, backwards ? lo - 1 : hi, backwards);
    if (g.hi > g.lo) groups.push([g.lo, g.hi]);
    lo = Math.min(lo, g.lo);
    hi = Math.max(hi, g.hi);
    if (g.lost || (backwards ? lo === 0 : hi === sizes.length)) return [lo, hi];
  }
}

describe('record claims', () => {
  it('owner and helper, interleaved at random, split a batch into a prefix and a suffix that cover it once', () => {
    const r = rng(3);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(r() * 40);
      const sizes = Array.from({ length: n }, () => Math.floor(r() * 40_000));
      const c = new ClaimPages(64).take(n);
      const owner = { lo: 0, hi: 0, done: false };
      const helper = { lo: n, hi: n, done: false };
      // Each step lets one side claim its next group; groups may come from either side in any order.
      while (!owner.done || !helper.done) {
        const side = owner.done ? helper : helper.done ? owner : r() < 0.5 ? owner : helper;
        const back = side === helper;
        const g = claimGroup(c, sizes, back ? side.lo - 1 : side.hi, back);
        side.lo = Math.min(side.lo, g.lo);
        side.hi = Math.max(side.hi, g.hi);
        side.done = g.lost || (back ? side.lo === 0 : side.hi === n);
        // A group stops once it holds CLAIM_GROUP_BYTES: only its last record takes it past.
        const bytes = sizes.slice(g.lo, g.hi);
        const beforeLast = back ? bytes.slice(1) : bytes.slice(0, -1);
        expect(beforeLast.reduce((a, b) => a + b, 0)).toBeLessThan(CLAIM_GROUP_BYTES);
      }
      expect(owner.lo).toBe(0);
      expect(helper.hi).toBe(n);
      expect(owner.hi).toBe(helper.lo);
      expect(unclaimedTail(c, n)).toBe(0);
    }
  });

  it("a batch nobody helps is all the owner's, in groups of about CLAIM_GROUP_BYTES", () => {
    const sizes = Array.from({ length: 10 }, () => 20_000);
    const groups: [number, number][] = [];
    const c = new ClaimPages().take(sizes.length);
    expect(unclaimedTail(c, sizes.length)).toBe(10);
    expect(runSide(c, sizes, false, groups)).toEqual([0, 10]);
    // 20 KB records: a group closes once it holds 64 KB, so after 4 records.
    expect(groups).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
  });

  it('pages hand out disjoint slots, and a batch larger than a page gets a page of its own', () => {
    const pages = new ClaimPages(8);
    const a = pages.take(5);
    const b = pages.take(3);
    expect(b.slots).toBe(a.slots);
    expect(b.base).toBe(5);
    const c = pages.take(2);
    expect(c.slots).not.toBe(a.slots);
    expect(c.base).toBe(0);
    const big = pages.take(20);
    expect(big.slots).not.toBe(c.slots);
    expect(big.slots.length).toBe(20);
    expect(big.base).toBe(0);
  });

  it('two threads racing over the same shared claims take every record exactly once', async () => {
    const n = 20_000;
    const sizes = new Array(n).fill(1);
    for (let round = 0; round < 5; round++) {
      const c = new ClaimPages(n).take(n);
      // The helper thread claims backwards one record at a time, as fast as it can.
      const helper = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         const { slots, n } = workerData;
         let lo = n;
         while (lo > 0 && Atomics.compareExchange(slots, lo - 1, 0, 2) === 0) lo--;
         parentPort.postMessage(lo);`,
        { eval: true, workerData: { slots: c.slots, n } },
      );
      const [lo, hi] = runSide(c, sizes, false);
      const helperLo = await new Promise<number>((resolve) => helper.once('message', resolve));
      await helper.terminate();
      expect(lo).toBe(0);
      expect(hi).toBe(helperLo);
      // Owner's records hold 1, the helper's 2: a prefix and a suffix, nothing claimed twice or missed.
      expect(Array.from(c.slots.subarray(0, hi)).every((v) => v === 1)).toBe(true);
      expect(Array.from(c.slots.subarray(hi, n)).every((v) => v === 2)).toBe(true);
    }
  });
});

describe('workers sharing batches', () => {
  it('batches split between two workers come back whole, equal to one thread running them', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { rm } = await import('node:fs/promises');
    const { pythonStdlibDir } = await import('../pipelines/sources/pystdlib.ts');
    const { DEFAULT_SIZE_LIMITS } = await import('../pipelines/steps/filters.ts');
    const { DEFAULT_MINHASH } = await import('../pipelines/steps/minhash.ts');
    const { startExecutor } = await import('../pipelines/steps/pool.ts');
    const { toWorkItem } = await import('../pipelines/steps/record.ts');
    const { tsAddonPath } = await import('../pipelines/steps/ts-addon.ts');
    const { smallTokenizer, tempDir } = await import('./data-helpers.ts');
    const dir = await tempDir('claims');
    const spec = {
      limits: DEFAULT_SIZE_LIMITS,
      minhash: DEFAULT_MINHASH,
      tokenizerPath: await smallTokenizer(dir, 300),
      tsAddon: tsAddonPath(),
    };
    const root = join(pythonStdlibDir(), 'email');
    const files = readdirSync(root)
      .filter((f) => f.endsWith('.py'))
      .map((f) => new Uint8Array(readFileSync(join(root, f))));
    // Two large batches: with nothing else queued, each worker is sent the other's to help with.
    const batches = [files, [...files].reverse()].map((b, k) =>
      b.map((bytes, i) =>
        toWorkItem(k * 1000 + i, { id: `${k}/${i}`, origin: 'x', language: 'python', bytes }),
      ),
    );
    const heavy = (b: unknown[]) => b.map((_, i) => i % 5 !== 0);
    const inline = await startExecutor(0, spec);
    const expected = [];
    for (const b of batches) expected.push(await inline.run(structuredClone(b), heavy(b)));
    await inline.close();
    const pool = await startExecutor(2, spec);
    let helped = 0;
    try {
      // Helping depends on timing: of a few rounds, at least one has a worker take records from the other.
      for (let round = 0; round < 4 && helped === 0; round++) {
        const got = await Promise.all(batches.map((b) => pool.run(structuredClone(b), heavy(b))));
        expect(got).toEqual(expected);
        helped = pool.recordsHelped ?? 0;
      }
    } finally {
      await pool.close();
      await rm(dir, { recursive: true, force: true });
    }
    expect(helped).toBeGreaterThan(0);
  });
});
