/**
 * `sdt train --gpus N`: N ranks on this machine, one per GPU. Each rank is `sdt train` again (the same node
 * and sdt.js) with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, and
 * --device cuda; each builds its part of the stream (feed-part.ts) and sdt-native's rank 0 hands NCCL's
 * unique id to the others over that port. Rank 0 writes to this terminal, rank r > 0 to
 * RUN/ranks/rank-R/sdt.log. When a rank fails the others are stopped: SIGTERM (they checkpoint if they
 * can), then SIGKILL after a grace period, since a rank waiting for a dead peer inside NCCL never returns
 * (its sdt-native dies with it: it asks the kernel for SIGKILL when its parent goes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { UserError } from '../common/errors.ts';
import { atomicWriteJson } from '../common/fs.ts';
import { sdtCli } from '../common/native.ts';
import type { TrainConfig } from './config.ts';

/** A TCP port free on 127.0.0.1 now (the kernel's pick), for rank 0's rendezvous. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

export interface LocalRanks {
  gpus: number;
  /** sdt train flags every rank gets besides the config (--stop-after, --quiet). */
  extraArgs: string[];
  /** Seconds a rank gets to stop after another failed, before SIGKILL. */
  graceSeconds: number;
}

/** The `sdt train` arguments of every rank: the resolved config for a fresh run, the run directory to resume. */
export async function rankArgs(cfg: TrainConfig, resume: boolean, extra: string[]): Promise<string[]> {
  const out = resolve(cfg.out);
  const common = ['--device', 'cuda', '--threads', String(cfg.threads), '--workers', String(cfg.workers)];
  if (resume) return ['train', '--resume', out, ...common, ...extra];
  const dir = join(out, 'ranks');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'train-config.json');
  await atomicWriteJson(file, { ...cfg, out });
  return ['train', '--config', file, '--out', out, ...common, ...extra];
}

export async function runLocalRanks(
  cfg: TrainConfig,
  resume: boolean,
  l: LocalRanks,
  say: (line: string) => void,
): Promise<number> {
  const args = await rankArgs(cfg, resume, l.extraArgs);
  const port = await freePort();
  const out = resolve(cfg.out);
  say(
    `${l.gpus} ranks on this machine, rendezvous 127.0.0.1:${port}; ranks 1..${l.gpus - 1} log to ${join(out, 'ranks')}`,
  );
  const children: ChildProcess[] = [];
  const exits: Promise<{ rank: number; code: number; log: string }>[] = [];
  for (let rank = 0; rank < l.gpus; rank++) {
    let log = '(this terminal)';
    let stdio: 'inherit' | ['ignore', number, number] = 'inherit';
    if (rank > 0) {
      const dir = join(out, 'ranks', `rank-${rank}`);
      mkdirSync(dir, { recursive: true });
      log = join(dir, 'sdt.log');
      const fd = openSync(log, 'a');
      stdio = ['ignore', fd, fd];
    }
    const child = spawn(process.execPath, [sdtCli, ...args], {
      stdio,
      env: {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(l.gpus),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
      },
    });
    children.push(child);
    exits.push(
      new Promise((res) => {
        child.on('error', () => res({ rank, code: 127, log }));
        child.on('close', (code, signal) => res({ rank, code: code ?? (signal ? 128 : 1), log }));
      }),
    );
  }
  // Ctrl-C reaches every rank from the terminal; a SIGTERM sent to this process is passed on.
  let interrupted = false;
  const forward = (sig: NodeJS.Signals) => (): void => {
    interrupted = true;
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  let failed: { rank: number; code: number; log: string } | undefined;
  let killer: NodeJS.Timeout | undefined;
  try {
    const pending = new Set(exits.map((_, i) => i));
    while (pending.size > 0) {
      const done = await Promise.race([...pending].map((i) => exits[i].then((e) => ({ i, e }))));
      pending.delete(done.i);
      if (done.e.code !== 0 && !failed) {
        failed = done.e;
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
        killer = setTimeout(() => {
          for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        }, l.graceSeconds * 1000);
      }
    }
  } finally {
    if (killer) clearTimeout(killer);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  // Stopped by a signal: each rank checkpointed (rank 0 wrote it) and exited 130 or 143, as one rank does.
  if (failed && interrupted) return failed.code;
  if (failed) {
    throw new UserError(
      `rank ${failed.rank} of ${l.gpus} exited with code ${failed.code} (its output: ${failed.log}); the other ranks were stopped. ` +
        `Complete checkpoints stay in ${out}/checkpoints: continue with \`sdt train --resume ${out} --gpus ${l.gpus}\`.`,
    );
  }
  return 0;
}
