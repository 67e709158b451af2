/**
 * Merge ranks by (left id, right id) in an open-addressing hash table over typed arrays. The encoder asks
 * it for every adjacent pair of every new word; a Map keyed by left * 2^21 + right would hash heap numbers.
 */
export class PairRanks {
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly ranks: Int32Array;
  private readonly mask: number;

  constructor(pairs: ReadonlyArray<readonly [number, number]>) {
    let cap = 16;
    while (cap < pairs.length * 2) cap *= 2;
    this.mask = cap - 1;
    this.lefts = new Int32Array(cap).fill(-1);
    this.rights = new Int32Array(cap);
    this.ranks = new Int32Array(cap);
    pairs.forEach(([l, r], rank) => {
      let h = this.slot(l, r);
      while (this.lefts[h] !== -1) {
        // A repeated pair keeps its first (lowest) rank, as the reference implementations do.
        if (this.lefts[h] === l && this.rights[h] === r) return;
        h = (h + 1) & this.mask;
      }
      this.lefts[h] = l;
      this.rights[h] = r;
      this.ranks[h] = rank;
    });
  }

  private slot(l: number, r: number): number {
    return (Math.imul(l, 0x9e3779b1) ^ Math.imul(r, 0x85ebca6b)) & this.mask;
  }

  /** The table itself (slot = pair hash & (size - 1), linear probing, left -1 when empty), for bpe.c. */
  tables(): { lefts: Int32Array; rights: Int32Array; ranks: Int32Array } {
    return { lefts: this.lefts, rights: this.rights, ranks: this.ranks };
  }

  /** The rank of merging (l, r), or -1 when they never merge. */
  get(l: number, r: number): number {
    let h = this.slot(l, r);
    for (;;) {
      const k = this.lefts[h];
      if (k === -1) return -1;
      if (k === l && this.rights[h] === r) return this.ranks[h];
      h = (h + 1) & this.mask;
    }
  }
}
