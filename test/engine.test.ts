/**
 * The engine (`sdt-native serve`, schemas/engine.md) through EngineClient: score, loss and logits equal the
 * one-shot commands (`sdt-native score`, `sdt-native forward`) exactly on the same batch; bad frames, unknown
 * fields, missing frames, a wrong device and a checkpoint without COMPLETE get named errors while the engine
 * keeps serving; a crashed engine is reported with its exit code and stderr; and TypeScript's request checker
 * accepts and rejects the same request documents as the engine.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, packRows } from '../engine/client.ts';
import { encodeBatchMessage, requestProblem } from '../schemas/engine.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';
import { mulberry32 } from './prng.ts';
import { readNpyFloat32, writeNpy } from './train-npy.ts';

const bin = builtNative() ?? '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-engine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONFIG = tinyModelConfig();
const ckpt = join(dir, 'ckpt');

/** Rows of random lengths with random targets (a third of the positions) and weights. */
function randomRows(n: number, seed: number) {
  const rnd = mulberry32(seed);
  const id = () => 4 + Math.floor(rnd() * (CONFIG.vocab_size - 4));
  return Array.from({ length: n }, () => {
    const len = 3 + Math.floor(rnd() * 20);
    const input = Int32Array.from({ length: len }, id);
    const targets = Int32Array.from({ length: len }, () => (rnd() < 0.33 ? id() : -1));
    const weights = Float32Array.from({ length: len }, () => 0.25 + rnd());
    return { input, targets, weights };
  });
}

function native(args: string[]) {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

function npyArgs(b: ReturnType<typeof packRows>) {
  const shape = [b.B, b.T];
  writeNpy(join(dir, 's.npy'), b.inputIds, shape);
  writeNpy(join(dir, 't.npy'), b.targetIds, shape);
  writeNpy(join(dir, 'w.npy'), b.weights, shape);
  writeNpy(join(dir, 'g.npy'), b.segmentIds!, shape);
}

describe.skipIf(!bin)('engine', () => {
  let engine: EngineClient;
  beforeAll(async () => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
    native(['init', '--config', join(dir, 'config.json'), '--out', ckpt, '--seed', '4']);
    engine = await EngineClient.start({ ckpt, binary: bin });
  });
  afterAll(() => engine?.close());

  it('score equals `sdt-native score` exactly on the same states', async () => {
    const batch = packRows(randomRows(37, 1), 0);
    npyArgs(batch);
    const d = (n: string) => join(dir, n);
    const old = native([
      'score',
      '--ckpt',
      ckpt,
      '--states',
      d('s.npy'),
      '--targets',
      d('t.npy'),
      '--segments',
      d('g.npy'),
      '--out',
      d('lp.npy'),
    ]);
    const want = readNpyFloat32(d('lp.npy')).data;
    const got = await engine.score(batch);
    expect(Array.from(got.logprob)).toEqual(Array.from(want));
    expect(got.targets).toBe(old.targets);
    expect(got.totalLogprob).toBe(old.total_logprob);
  });

  it('loss and logits equal `sdt-native forward` exactly', async () => {
    const batch = packRows(randomRows(9, 2), 0);
    npyArgs(batch);
    const d = (n: string) => join(dir, n);
    const old = native([
      'forward',
      '--ckpt',
      ckpt,
      '--tokens',
      d('s.npy'),
      '--targets',
      d('t.npy'),
      '--weights',
      d('w.npy'),
      '--segments',
      d('g.npy'),
      '--out',
      d('lg.npy'),
    ]);
    const loss = await engine.loss(batch);
    expect(loss.loss).toBe(old.loss);
    expect(loss.targets).toBe(old.targets);
    const logits = await engine.logits(batch);
    expect(logits.dims).toEqual([batch.B, batch.T, CONFIG.vocab_size]);
    expect(Buffer.from(logits.data.buffer).equals(Buffer.from(readNpyFloat32(d('lg.npy')).data.buffer))).toBe(
      true,
    );
    // Attention mode per request: causal logits of a row's first position see only that position.
    const causal = await engine.logits(batch, { attention: 'causal' });
    expect(Buffer.from(causal.data.buffer).equals(Buffer.from(logits.data.buffer))).toBe(false);
  });

  it('bad input gets a named error and the engine keeps serving', async () => {
    const batch = packRows(randomRows(3, 3), 0);
    const want = (await engine.score(batch)).logprob;
    const line = (id: string, extra = '') => `{"id":"${id}","op":"score"${extra}}\n`;
    const damaged = encodeBatchMessage(batch);
    damaged[damaged.length - 1] ^= 0xff;
    const badVersion = encodeBatchMessage(batch);
    badVersion[8] = 9;
    const cases: [string, Uint8Array | string, string][] = [
      ['crc', Buffer.concat([Buffer.from(line('crc')), damaged]), 'bad_frame'],
      ['ver', Buffer.concat([Buffer.from(line('ver')), badVersion]), 'bad_frame'],
      [
        'field',
        Buffer.concat([Buffer.from(line('field', ',"temperature":1')), encodeBatchMessage(batch)]),
        'bad_request',
      ],
      // A missing frame shows when the next message begins: here a generate request.
      ['none', `${line('none')}{"id":"next","prompt":[5],"max_new":1}\n`, 'missing_frame'],
      ['op', '{"id":"op","op":"train"}\n', 'bad_request'],
      [
        'dev',
        Buffer.concat([Buffer.from(line('dev', ',"device":"cuda"')), encodeBatchMessage(batch)]),
        'device',
      ],
      ['gen', '{"id":"gen","prompt":[5,6],"max_new":2,"colour":1}\n', 'bad_request'],
      [
        'ids',
        Buffer.concat([
          Buffer.from(line('ids')),
          encodeBatchMessage({ ...batch, inputIds: batch.inputIds.map(() => 999) }),
        ]),
        'bad_batch',
      ],
    ];
    for (const [id, bytes, code] of cases) {
      const r = await engine.sendRaw(bytes, id);
      expect(r.ok, id).toBe(false);
      if (!r.ok) expect(r.code, `${id}: ${r.error}`).toBe(code);
    }
    expect((await engine.sendRaw(encodeBatchMessage(batch), null)) as { code?: string }).toMatchObject({
      code: 'stray_frame',
    });
    expect((await engine.sendRaw('{"id": oops\n', null)) as { code?: string }).toMatchObject({
      code: 'bad_json',
    });
    expect(Array.from((await engine.score(batch)).logprob)).toEqual(Array.from(want));
  });

  it('a checkpoint without COMPLETE or a device the binary lacks fails at start, naming why', async () => {
    const partial = join(dir, 'partial');
    native(['init', '--config', join(dir, 'config.json'), '--out', partial]);
    rmSync(join(partial, 'COMPLETE'));
    await expect(EngineClient.start({ ckpt: partial, binary: bin })).rejects.toThrow(/COMPLETE marker/);
    const help = spawnSync(bin, ['serve', '--device', 'cuda', '--ckpt', ckpt], { encoding: 'utf8' });
    if (help.status === 2) {
      await expect(EngineClient.start({ ckpt, binary: bin, device: 'cuda' })).rejects.toThrow(
        /--device cuda/,
      );
      // The trainer takes the same device choice and refuses it the same way, before reading anything.
      const train = spawnSync(
        bin,
        [
          'train',
          '--device',
          'cuda',
          '--stream',
          '-',
          '--config',
          join(dir, 'none.json'),
          '--out',
          join(dir, 'run'),
        ],
        { encoding: 'utf8' },
      );
      expect(train.status).toBe(2);
      expect(train.stderr).toMatch(/--device cuda: (this sdt-native was built without CUDA|no CUDA device)/);
    }
  });

  it('a crashed engine is reported with its exit code and stderr tail', async () => {
    const fake = join(dir, 'crashing-engine.sh');
    writeFileSync(
      fake,
      `#!/bin/sh\necho '{"event":"ready","engine_version":1,"device":"cpu","source":"x"}'\nread line\necho "model exploded at layer 3" >&2\nexit 7\n`,
    );
    chmodSync(fake, 0o755);
    const crashing = await EngineClient.start({ ckpt, binary: fake });
    await expect(crashing.score(packRows(randomRows(2, 4), 0))).rejects.toThrow(
      /exited \(7\)[\s\S]*model exploded/,
    );
    await expect(crashing.loss(packRows(randomRows(2, 4), 0))).rejects.toThrow(/exited \(7\)/);
  });

  it('TypeScript and the engine accept and reject the same request documents', async () => {
    const docs: Record<string, unknown>[] = [
      { op: 'score' },
      { op: 'loss', attention: 'causal' },
      { op: 'logits', attention: 'sideways' },
      { op: 'score', device: 'cpu' },
      { op: 'score', device: 'tpu' },
      { op: 'score', id: ['x'] },
      { op: 'score', prompt: [5] },
      { op: 'loss', max_new: 3 },
      { op: 'score', threads: 1 },
      { op: 'score', threads: -1 },
      { op: 'loss', threads: 1.5 },
      { op: 7 },
      { op: 'forward' },
      { prompt: [5, 6], max_new: 2 },
      { op: 'generate', prompts: [[5], [6, 7]], max_new: 2, block: 2 },
      { prompt: [5], attention: 'causal' },
      { prompt: [5], stream: 'yes' },
      { prompt: [5], prompts: [[6]] },
      { max_new: 2 },
      { prompt: [5], max_new: 1, device: 'cpu', op: 'generate' },
      { op: 'cancel', request: 'r999' },
      { op: 'cancel', request: 7, sequences: [0, 2] },
      { op: 'cancel' },
      { op: 'cancel', request: ['r1'] },
      { op: 'cancel', request: 'r1', sequences: [] },
      { op: 'cancel', request: 'r1', sequences: [1.5] },
      { op: 'cancel', request: 'r1', sequences: [-1] },
      { op: 'cancel', request: 'r1', sequences: 3 },
      { op: 'cancel', request: 'r1', prompt: [5] },
    ];
    const batch = packRows(randomRows(2, 5), 0);
    for (const [i, doc] of docs.entries()) {
      const id = `doc${i}`;
      const line = Buffer.from(`${JSON.stringify({ ...doc, id: doc.id ?? id })}\n`);
      const batchOp = ['score', 'loss', 'logits'].includes(doc.op as string);
      const r = await engine.sendRaw(
        batchOp ? Buffer.concat([line, encodeBatchMessage(batch)]) : line,
        String(doc.id ?? id),
      );
      const ts = requestProblem({ ...doc, id: doc.id ?? id });
      expect(
        r.ok,
        `${JSON.stringify(doc)}: engine ${r.ok ? 'ok' : (r as { error: string }).error}, ts ${ts}`,
      ).toBe(ts === null);
    }
  });
});
