/**
 * Record claims shared between the worker threads of a build, so that an idle worker can take the tail of
 * a batch another worker holds. One Int32 per record of a batch, in shared memory: a worker runs a record
 * only after it turned the record's claim from 0 to 1. The batch's owner claims from the front and a
 * helper from the back; each stops at its first lost claim, so the two take a prefix and a suffix and
 * meet in between, without a message to agree on where.
 */

/** Records a worker claims at once, up to this many input bytes: a step runs over them together. */
export const CLAIM_GROUP_BYTES = 64 << 10;

/** A batch's claims: `length` slots from `base` in a shared Int32Array. */
export interface BatchClaims {
  slots: Int32Array;
  base: number;
}

/** Hands out claim slots from shared pages; a batch that does not fit the current page starts a new one. */
export class ClaimPages {
  private page: Int32Array;
  private used = 0;

  constructor(private readonly pageSlots = 1 << 14) {
    this.page = ClaimPages.newPage(pageSlots);
  }

  private static newPage(n: number): Int32Array {
    return new Int32Array(new SharedArrayBuffer(4 * n));
  }

  take(n: number): BatchClaims {
    if (this.used + n > this.page.length) {
      this.page = ClaimPages.newPage(Math.max(this.pageSlots, n));
      this.used = 0;
    }
    const claims = { slots: this.page, base: this.used };
    this.used += n;
    return claims;
  }
}

/** Records of the batch not claimed yet, counted from its back (what a helper could still take). */
export function unclaimedTail(c: BatchClaims, n: number): number {
  let k = 0;
  while (k < n && Atomics.load(c.slots, c.base + n - 1 - k) === 0) k++;
  return k;
}

/**
 * The next group of records for this worker: from `from` forwards (owner) or backwards (helper), claimed
 * one by one until CLAIM_GROUP_BYTES of input or a lost claim. Returns [lo, hi) of the claimed records
 * (empty when the first claim is lost) and whether a claim was lost (then nothing is left for this side).
 */
export function claimGroup(
  c: BatchClaims,
  sizes: ArrayLike<number>,
  from: number,
  backwards: boolean,
): { lo: number; hi: number; lost: boolean } {
  const n = sizes.length;
  let bytes = 0;
  let i = from;
  const step = backwards ? -1 : 1;
  while (backwards ? i >= 0 : i < n) {
    if (bytes >= CLAIM_GROUP_BYTES) break;
    if (Atomics.compareExchange(c.slots, c.base + i, 0, 1) !== 0) {
      return backwards ? { lo: i + 1, hi: from + 1, lost: true } : { lo: from, hi: i, lost: true };
    }
    bytes += sizes[i];
    i += step;
  }
  return backwards ? { lo: i + 1, hi: from + 1, lost: false } : { lo: from, hi: i, lost: false };
}
