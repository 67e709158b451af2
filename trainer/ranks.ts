/**
 * Where this process stands in a data-parallel run, read from the variables torchrun and srun set, by the
 * rules sdt-native applies to the same variables for its rendezvous (native/src/ranks/rendezvous.h):
 * RANK, WORLD_SIZE, LOCAL_RANK; else SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; else a world of one. The
 * feed needs the rank and the world (which part of the stream it builds); the native side reads
 * MASTER_ADDR/MASTER_PORT itself.
 */
import { UserError } from '../common/errors.ts';

export interface Ranks {
  rank: number;
  world: number;
  localRank: number;
  source: 'torchrun' | 'slurm' | 'default';
}

const SOLE_RANK: Ranks = { rank: 0, world: 1, localRank: 0, source: 'default' };

function int(env: NodeJS.ProcessEnv, name: string, lo: number, hi: number): number {
  const v = env[name] ?? '';
  const x = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(x) || x < lo || x > hi)
    throw new UserError(`${name}="${v}" is not an integer in [${lo}, ${hi}]`);
  return x;
}

function need(env: NodeJS.ProcessEnv, name: string, because: string): void {
  if (env[name] === undefined) throw new UserError(`${name} is not set (${because})`);
}

/** The variables each launcher sets, in the order they are looked for: rank, world size, local rank. */
const SOURCES = [
  { source: 'torchrun', names: ['RANK', 'WORLD_SIZE', 'LOCAL_RANK'] },
  { source: 'slurm', names: ['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'] },
] as const;

export function ranksFromEnv(env: NodeJS.ProcessEnv = process.env): Ranks {
  let r: Ranks = SOLE_RANK;
  const found = SOURCES.find((s) => env[s.names[0]] !== undefined);
  if (found) {
    const [rank, world, local] = found.names;
    need(env, world, `${rank} is`);
    r = {
      rank: int(env, rank, 0, 1 << 20),
      world: int(env, world, 1, 1 << 20),
      localRank: env[local] !== undefined ? int(env, local, 0, 1 << 10) : 0,
      source: found.source,
    };
  } else if (env.WORLD_SIZE !== undefined && int(env, 'WORLD_SIZE', 1, 1 << 20) > 1) {
    throw new UserError('WORLD_SIZE is set but RANK is not: set RANK (0 .. WORLD_SIZE-1) for each process');
  }
  if (r.rank >= r.world)
    throw new UserError(`rank ${r.rank} (from ${r.source} variables) is not below the world size ${r.world}`);
  if (r.world > 1) need(env, 'MASTER_ADDR', "a world of more than one rank needs rank 0's host");
  return r;
}
