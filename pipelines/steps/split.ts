import type { Split } from '../../schemas/dataset.ts';
import { stableHash32 } from './hash.ts';

/**
 * The split of a record: the source's when it gives one, otherwise a stable hash of the id, so a record
 * lands in the same split on every run and every machine whatever the order or sharding.
 */
export function assignSplit(id: string, given: Split | undefined, validationFraction: number): Split {
  if (given) return given;
  return stableHash32(`split:${id}`) / 2 ** 32 < validationFraction ? 'validation' : 'train';
}

/** --shard i/N: this machine takes the records whose stable hash mod N is i. */
export function inShard(id: string, shard: { index: number; count: number } | undefined): boolean {
  if (!shard || shard.count <= 1) return true;
  return stableHash32(`shard:${id}`) % shard.count === shard.index;
}
