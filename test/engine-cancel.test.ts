/**
 * The engine's cancel message (schemas/engine.md) on a real model: rows cancelled while their request decodes
 * stop early (fewer steps and model calls than decoded to the end) while the rest of the lockstep group gives
 * exactly what each row gives decoded alone; a request cancelled whole ends with the `cancelled` error, and
 * one cancelled while it waits behind another ends before its first step; the engine serves on. And each result's group_forward_passes is the model calls of its lockstep group.
 *
 * The cancel is sent when the first step event arrives. The engine cannot have finished by then: it writes
 * several hundred kilobytes of step events, and a pipe holds 64 KiB, so it waits for this client to read
 * before it can run far ahead of what the client has seen.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient } from '../engine/client.ts';
import type { WireResult, WireStepEvent } from '../schemas/engine.ts';
import { builtNative, tinyModelConfig } from './native-build.ts';

const bin = builtNative() ?? '';
const dir = mkdtempSync(join(tmpdir(), 'sdt-engine-cancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One position per step, no early end: each row makes MAX_NEW steps, one step event each.
const SETTINGS = { max_new: 240, block: 4, rule: 'fixed', tokens_per_step: 1, eos: -1 };
const ROWS = 8;
const prompt = (k: number) => Array.from({ length: 6 }, (_, j) => 4 + ((j * 7 + k * 5) % 36));

describe.skipIf(!bin)('engine cancel', () => {
  let engine: EngineClient;
  beforeAll(async () => {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify(tinyModelConfig({ max_position_embeddings: 256, attention_mode: 'block' })),
    );
    const ckpt = join(dir, 'ckpt');
    const r = spawnSync(bin, ['init', '--config', config, '--out', ckpt, '--seed', '3'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    engine = await EngineClient.start({ ckpt, binary: bin });
  });
  afterAll(() => engine?.close());

  async function alone(i: number): Promise<WireResult> {
    const res = await engine.request({ prompt: prompt(i), ...SETTINGS });
    if (!res.ok) throw new Error(res.error);
    return res.results[0];
  }

  /** Decodes ROWS prompts as one request, cancelling `sequences` (undefined: all) at the first step event. */
  async function decodeCancelling(sequences?: number[]) {
    let events = 0;
    let ack: Promise<unknown> | undefined;
    const req = engine.startRequest(
      { prompts: Array.from({ length: ROWS }, (_, i) => prompt(i)), ...SETTINGS },
      (_e: WireStepEvent) => {
        events++;
        ack ??= engine.cancel(req.id, sequences);
      },
    );
    const response = await req.response;
    return { response, events, ack: await ack };
  }

  it('stops cancelled rows early; the others decode exactly as alone', async () => {
    const pid = engine.pid;
    const cut = [1, 3, 6];
    const { response, events, ack } = await decodeCancelling(cut);
    expect(ack).toMatchObject({ ok: true, op: 'cancel', decoding: true });
    if (!response.ok) throw new Error(response.error);
    expect(events).toBeLessThan(ROWS * SETTINGS.max_new);
    for (let i = 0; i < ROWS; i++) {
      const got = response.results[i];
      const want = await alone(i);
      expect(want.steps).toBe(SETTINGS.max_new);
      if (cut.includes(i)) {
        expect(got.cancelled).toBe(true);
        expect(got.steps).toBeLessThan(want.steps);
        expect(got.forward_passes).toBeLessThan(want.forward_passes);
        // What it kept is the start of its text alone.
        expect(got.tokens).toEqual(want.tokens.slice(0, got.tokens.length));
      } else {
        expect(got.cancelled).toBe(false);
        expect(got.tokens).toEqual(want.tokens);
        expect(got.steps).toBe(want.steps);
        expect(got.forward_passes).toBe(want.forward_passes);
      }
    }
    expect(engine.pid).toBe(pid);
    expect(engine.alive).toBe(true);
  });

  it('answers a request cancelled whole with the cancelled error, and serves on', async () => {
    const { response, events } = await decodeCancelling();
    expect(response).toMatchObject({ ok: false, code: 'cancelled' });
    expect(events).toBeLessThan(ROWS * SETTINGS.max_new);
    // A cancel that comes after its answer changes nothing.
    const late = await engine.cancel('r0');
    expect(late).toMatchObject({ ok: true, decoding: false });
    const again = await alone(2);
    expect(again.tokens).toHaveLength(SETTINGS.max_new);
    // Out-of-range rows of the decoding request are refused by name.
    const prompts = Array.from({ length: ROWS }, (_, i) => prompt(i));
    const req = engine.startRequest({ prompts, ...SETTINGS }, () => undefined);
    const far = await engine.cancel(req.id, [ROWS]);
    expect(far).toMatchObject({ ok: false, code: 'bad_request' });
    expect((far as { error: string }).error).toMatch(/sequence 8 is out of range/);
    expect((await req.response).ok).toBe(true);
  });

  it('ends a request cancelled while it waits behind another before it decodes a step', async () => {
    const prompts = Array.from({ length: ROWS }, (_, i) => prompt(i));
    const first = engine.startRequest({ prompts, ...SETTINGS });
    let steps = 0;
    const second = engine.startRequest({ prompts, ...SETTINGS }, () => steps++);
    const ack = await engine.cancel(second.id);
    expect(ack).toMatchObject({ ok: true, op: 'cancel' });
    expect(await second.response).toMatchObject({ ok: false, code: 'cancelled' });
    expect(steps).toBe(0);
    const done = await first.response;
    if (!done.ok) throw new Error(done.error);
    expect(done.results.every((r) => !r.cancelled && r.steps === SETTINGS.max_new)).toBe(true);
  });

  it('reports each lockstep group with its model calls', async () => {
    const one = await alone(4);
    // A group of one row made exactly that row's calls.
    expect(one.group).toBe(0);
    expect(one.group_forward_passes).toBe(one.forward_passes);
    // Four copies of one prompt decode in lockstep: one group making the calls of one row alone.
    const res = await engine.request({ prompts: [0, 1, 2, 3].map(() => prompt(4)), ...SETTINGS });
    if (!res.ok) throw new Error(res.error);
    for (const r of res.results) {
      expect(r.group).toBe(0);
      expect(r.group_forward_passes).toBe(one.forward_passes);
      expect(r.tokens).toEqual(one.tokens);
    }
    // Prompts of two lengths modulo the block share a group, each row as it decodes alone ...
    const short = prompt(1).slice(0, 5);
    const mixed = await engine.request({ prompts: [prompt(0), short], ...SETTINGS });
    if (!mixed.ok) throw new Error(mixed.error);
    expect(mixed.results.map((r) => r.group)).toEqual([0, 0]);
    expect(mixed.results[0].tokens).toEqual((await alone(0)).tokens);
    const shortAlone = await engine.request({ prompt: short, ...SETTINGS });
    if (!shortAlone.ok) throw new Error(shortAlone.error);
    expect(mixed.results[1].tokens).toEqual(shortAlone.results[0].tokens);
    // ... unless one is too long to leave max_new + block - 1 positions: then two groups, one after the other.
    const long = Array.from({ length: 15 }, (_, j) => 5 + j);
    const two = await engine.request({ prompts: [prompt(0), long], ...SETTINGS });
    if (!two.ok) throw new Error(two.error);
    expect(new Set(two.results.map((r) => r.group))).toEqual(new Set([0, 1]));
    for (const r of two.results) expect(r.group_forward_passes).toBe(r.forward_passes);
  });
});
