/** Exact duplicates: the first record with given content hash is kept, later ones are dropped. */
export class ExactDedup {
  private readonly firstId = new Map<string, string>();

  /** The id of the earlier record with the same content, or undefined (and the hash is remembered). */
  checkAndAdd(id: string, contentHash: string): string | undefined {
    const prev = this.firstId.get(contentHash);
    if (prev !== undefined) return prev;
    this.firstId.set(contentHash, id);
    return undefined;
  }
}
