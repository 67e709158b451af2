/**
 * `sdt serve` driven by the `openai` npm client and plain HTTP: completions (plain, streamed, FIM, n > 1,
 * lists of prompts, stop sequences) equal what the engine decodes for the same request alone; concurrent
 * requests share lockstep groups and still get their own answers; bad requests get OpenAI-style errors with
 * their status while the server keeps serving; a full queue answers 429; a killed engine is restarted.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionToRow, writeTrajectories } from '../posttrain/trajectories/record.ts';
import { cutAtStop } from '../serve/openai.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { builtNative } from './native-build.ts';
import { makeServeCheckpoint, metric, PROMPTS, postJson, Reference } from './serve-helpers.ts';

const bin = builtNative() ?? '';
if (!bin) console.warn('serve tests skipped: sdt-native is not built (npm run build:native)');

describe.skipIf(!bin)('sdt serve', () => {
  let server: RunningServer;
  let ref: Reference;
  let openai: OpenAI;
  let cleanup: () => void = () => undefined;
  let ckpt = '';
  const maxQueue = 6;
  const tmp = mkdtempSync(join(tmpdir(), 'sdt-serve-traj-'));

  beforeAll(async () => {
    const made = await makeServeCheckpoint(bin);
    cleanup = made.cleanup;
    ckpt = made.ckpt;
    server = await startServer({
      engine: { ckpt: made.ckpt, binary: bin },
      port: 0,
      maxQueue,
      maxBodyBytes: 65536,
    });
    ref = await Reference.start(made.ckpt, bin);
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await ref?.close();
    cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('lists its model and reports health', async () => {
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual([server.modelName]);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
  });

  it('answers a completion as the engine decodes it alone, with usage and forward passes', async () => {
    const want = await ref.text(PROMPTS[0], { maxNew: 20 });
    const r = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[0],
      max_tokens: 20,
    });
    expect(r.object).toBe('text_completion');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0].text).toBe(want.text);
    expect(r.choices[0].finish_reason).toBe(want.eos ? 'stop' : 'length');
    const tok = ref.engine.requireTokenizer();
    expect(r.usage?.prompt_tokens).toBe(tok.encode(PROMPTS[0]).length + 1);
    expect(r.usage?.completion_tokens).toBe(want.tokens);
    expect((r.usage as unknown as { forward_passes: number }).forward_passes).toBe(want.passes);
    // n copies decode as one lockstep group, which makes the model calls of one copy alone: usage counts
    // the group's calls, each choice its own row's.
    const three = await postJson(`${server.url}/v1/completions`, {
      prompt: PROMPTS[0],
      max_tokens: 20,
      n: 3,
    });
    const body = three.json as unknown as {
      choices: { text: string; sdt: { forward_passes: number } }[];
      usage: { forward_passes: number };
    };
    expect(body.choices.map((c) => c.text)).toEqual([want.text, want.text, want.text]);
    expect(body.choices.map((c) => c.sdt.forward_passes)).toEqual([want.passes, want.passes, want.passes]);
    expect(body.usage.forward_passes).toBe(want.passes);
  });

  it('streams the same text as server-sent events, ending with usage', async () => {
    const settings = { max_tokens: 24, threshold: 0.5 };
    const plain = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[3],
      ...settings,
    });
    const stream = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[3],
      ...settings,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      chunks++;
      for (const ch of c.choices) {
        text += ch.text;
        finish = ch.finish_reason ?? finish;
      }
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(plain.choices[0].text);
    expect(finish).toBe(plain.choices[0].finish_reason);
    expect(usage?.completion_tokens).toBe(plain.usage?.completion_tokens);
    // The text arrived as it decoded, not in one piece at the end.
    expect(chunks).toBeGreaterThan(2);
  });

  it('fills in the middle with the FIM special tokens', async () => {
    const tok = ref.engine.requireTokenizer();
    const prefix = 'def add(a, b):\n    return ';
    const suffix = '\n\nprint(add(1, 2))\n';
    const { fimPrefix, fimSuffix, fimMiddle } = tok.special;
    const ids = [fimPrefix, ...tok.encode(prefix), fimSuffix, ...tok.encode(suffix), fimMiddle];
    const [want] = await ref.tokens(ids, { maxNew: 12 });
    const r = await openai.completions.create({
      model: server.modelName,
      prompt: prefix,
      suffix,
      max_tokens: 12,
    });
    expect(r.choices[0].text).toBe(tok.decode(want));
    expect(r.usage?.prompt_tokens).toBe(ids.length);
  });

  it('returns n completions per prompt of a list, in OpenAI order, greedy and seeded', async () => {
    const tok = ref.engine.requireTokenizer();
    const greedy = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS.slice(0, 3),
      n: 2,
      max_tokens: 10,
    });
    expect(greedy.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (let p = 0; p < 3; p++) {
      const want = (await ref.text(PROMPTS[p], { maxNew: 10 })).text;
      expect(greedy.choices[2 * p].text).toBe(want);
      expect(greedy.choices[2 * p + 1].text).toBe(want);
    }
    // Sampled rows: row i draws from the seed's stream i, exactly as the engine decodes n copies.
    const sampled = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[1],
      n: 3,
      max_tokens: 10,
      temperature: 1,
      seed: 11,
    });
    const bos = ref.engine.info.bos_token_id;
    const want = await ref.tokens(
      [bos, ...tok.encode(PROMPTS[1])],
      { maxNew: 10, temperature: 1, seed: 11 },
      3,
    );
    expect(sampled.choices.map((c) => c.text)).toEqual(want.map((t) => tok.decode(t)));
    expect(new Set(want.map((t) => t.join(','))).size).toBeGreaterThan(1);
  });

  it('cuts completions at stop sequences, streamed or not', async () => {
    const full = (await ref.text(PROMPTS[2], { maxNew: 24 })).text;
    expect(full.length).toBeGreaterThan(6);
    const stop = full.slice(3, 5);
    const want = cutAtStop(full, [stop]).text;
    expect(want.length).toBeLessThan(full.length);
    const r = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[2],
      max_tokens: 24,
      stop: [stop, '\u2603'],
    });
    expect(r.choices[0].text).toBe(want);
    expect(r.choices[0].finish_reason).toBe('stop');
    const stream = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[2],
      max_tokens: 24,
      stop,
      stream: true,
    });
    let text = '';
    for await (const c of stream) for (const ch of c.choices) text += ch.text;
    expect(text).toBe(want);
  });

  /** Holds the engine (SIGSTOP) until `until` holds, so a test decides what is queued behind what. */
  async function whilePaused(until: () => boolean): Promise<void> {
    const pid = server.scheduler.enginePid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 400 && !until(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(until()).toBe(true);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  it('batches requests that arrive while a group decodes into the next group, each with its own answer', async () => {
    const tok = ref.engine.requireTokenizer();
    const groupsBefore = server.scheduler.stats().groups;
    // Token prompts of several lengths modulo the block size (8), which the engine decodes in one lockstep
    // group, and one too long to join them (prompt + max_tokens + block - 1 over the context of 96), which
    // waits for a group of its own.
    const ids = (n: number, k: number) => Array.from({ length: n }, (_, j) => 8 + ((j * 7 + k * 13) % 280));
    const jobs = [ids(5, 0), ids(13, 1), ids(22, 2), ids(5, 3), ids(31, 4), ids(12, 5), ids(75, 6)];
    const ask = (p: number[]) =>
      openai.completions.create({ model: server.modelName, prompt: p, max_tokens: 16 });
    const first = ask(jobs[0]);
    const s = () => server.scheduler.stats();
    let replies: ReturnType<typeof ask>[] = [];
    await whilePaused(() => {
      // Once the first decodes (held by SIGSTOP), the others queue behind it.
      if (replies.length === 0 && s().runningRows > 0) replies = [first, ...jobs.slice(1).map(ask)];
      return s().queued === jobs.length - 1;
    });
    const answers = await Promise.all(replies);
    for (let i = 0; i < jobs.length; i++) {
      const [want] = await ref.tokens(jobs[i], { maxNew: 16 });
      expect(answers[i].choices[0].text).toBe(tok.decode(want));
    }
    // The request that found the engine idle, then the five of mixed lengths together, then the long one.
    expect(server.scheduler.stats().groups - groupsBefore).toBe(3);
    // The five shared one group's model calls, which each reports as its usage: what the engine counts for
    // that group decoded by itself.
    const shared = await ref.engine.request({
      prompts: jobs.slice(1, 6),
      max_new: 16,
      block: 8,
      mode: 'diffusion',
    });
    if (!shared.ok) throw new Error(shared.error);
    expect(new Set(shared.results.map((r) => r.group))).toEqual(new Set([0]));
    const passes = (a: OpenAI.Completion) =>
      (a.usage as unknown as { forward_passes: number }).forward_passes;
    for (const a of answers.slice(1, 6)) expect(passes(a)).toBe(shared.results[0].group_forward_passes);
    // The long one decoded in a group of its own: its own calls.
    const [alone] = await ref.engine.generateTokens([jobs[6]], { maxNew: 16, block: 8 });
    expect(passes(answers[6])).toBe(alone.forwardPasses);
  });

  it('answers bad requests with OpenAI-style errors and the right status, and keeps serving', async () => {
    const url = `${server.url}/v1/completions`;
    const cases: [unknown, number, RegExp][] = [
      ['{"prompt": "x", ', 400, /not valid JSON/],
      [{ prompt: 'x', colour: 'red' }, 400, /unknown field "colour"/],
      [{ prompt: 'x', temperature: 3 }, 400, /"temperature" must be a number in \[0, 2\]/],
      [{ prompt: 'x', n: 17 }, 400, /"n" must be an integer in \[1, 16\]/],
      [{ prompt: 'x', max_tokens: 500 }, 400, /"max_tokens" must be an integer in \[1, 95\]/],
      [{ prompt: 'x', rule: 'sometimes' }, 400, /"rule" must be one of/],
      [{ prompt: 'x', logprobs: 5 }, 400, /"logprobs" is not supported/],
      [{ prompt: 'x '.repeat(200), max_tokens: 4 }, 400, /over the model's context of 96 tokens/],
      [{ prompt: Array.from({ length: 9 }, () => 'x'), n: 8 }, 400, /at most 64 per request/],
      [{ prompt: 'x', model: 'gpt-4' }, 404, /model "gpt-4" is not served here/],
      [{ prompt: 'x'.repeat(70_000) }, 413, /over 65536 bytes|65536 \(--max-body\)/],
      [{ max_tokens: 3 }, 400, /missing field "prompt"/],
    ];
    for (const [body, status, message] of cases) {
      const r = await postJson(url, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(r.json.error?.message).toMatch(message);
      expect(typeof r.json.error?.type).toBe('string');
    }
    const chat = await postJson(`${server.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(chat.status).toBe(400);
    expect(chat.json.error?.code).toBe('no_chat_template');
    await expect(
      openai.chat.completions.create({
        model: server.modelName,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    ).rejects.toThrow(/no chat template/);
    expect((await fetch(`${server.url}/v1/nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}/v1/completions`)).status).toBe(405);
    const after = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[0],
      max_tokens: 8,
    });
    expect(after.choices[0].text).toBe((await ref.text(PROMPTS[0], { maxNew: 8 })).text);
  });

  it('refuses requests over the queue bound with 429 and answers the others correctly', async () => {
    // Different thresholds give each request a group of its own, so they queue one behind the other.
    const body = (i: number) => ({ prompt: PROMPTS[4], max_tokens: 40, threshold: 0.5 + i * 0.02 });
    let refused = 0;
    const replies = Array.from({ length: 20 }, (_, i) =>
      postJson(`${server.url}/v1/completions`, body(i)).then((r) => {
        if (r.status === 429) refused++;
        return r;
      }),
    );
    // One decoding, maxQueue waiting, the rest refused at once.
    await whilePaused(() => refused === 20 - 1 - maxQueue);
    const done = await Promise.all(replies);
    expect(done.filter((r) => r.status === 200)).toHaveLength(1 + maxQueue);
    for (const [i, r] of done.entries()) {
      if (r.status === 429) {
        expect(r.json.error?.code).toBe('queue_full');
        continue;
      }
      expect(r.status).toBe(200);
      expect(r.json.choices?.[0].text).toBe(
        (await ref.text(PROMPTS[4], { maxNew: 40, threshold: body(i).threshold })).text,
      );
    }
  });

  it('restarts a killed engine, answering 503 until it is back', async () => {
    const pid = server.scheduler.enginePid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid as number, 'SIGSTOP');
    const inFlight = postJson(`${server.url}/v1/completions`, { prompt: PROMPTS[1], max_tokens: 60 });
    for (let i = 0; i < 400 && server.scheduler.stats().runningRows === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    process.kill(pid as number, 'SIGKILL');
    const r = await inFlight;
    expect(r.status).toBe(503);
    expect(r.json.error?.code).toBe('engine_unavailable');
    let health = 503;
    for (let i = 0; i < 200 && health !== 200; i++) {
      health = (await fetch(`${server.url}/health`)).status;
      if (health !== 200) await new Promise((res) => setTimeout(res, 50));
    }
    expect(health).toBe(200);
    expect(server.scheduler.enginePid).not.toBe(pid);
    const after = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[1],
      max_tokens: 12,
    });
    expect(after.choices[0].text).toBe((await ref.text(PROMPTS[1], { maxNew: 12 })).text);
    const m = await (await fetch(`${server.url}/metrics`)).text();
    expect(metric(m, 'sdt_engine_restarts_total')).toBe(1);
  });

  it('frees a cancelled stream and serves on', async () => {
    const pid = server.scheduler.enginePid;
    const restarts = server.scheduler.stats().engineRestarts;
    const ctrl = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: PROMPTS[3],
        max_tokens: 48,
        stream: true,
        return_steps: true,
        threshold: 1,
      }),
      signal: ctrl.signal,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^data: .*"sdt_step"/);
    ctrl.abort();
    let idle = false;
    for (let i = 0; i < 200 && !idle; i++) {
      const s = server.scheduler.stats();
      idle = s.runningRows === 0 && s.queued === 0 && s.engineUp;
      if (!idle) await new Promise((r) => setTimeout(r, 25));
    }
    expect(idle).toBe(true);
    const after = await openai.completions.create({
      model: server.modelName,
      prompt: PROMPTS[5],
      max_tokens: 12,
    });
    expect(after.choices[0].text).toBe((await ref.text(PROMPTS[5], { maxNew: 12 })).text);
    // The engine cancelled the rows; it was not restarted.
    expect(server.scheduler.enginePid).toBe(pid);
    expect(server.scheduler.stats().engineRestarts).toBe(restarts);
  });

  it('cancels the rows of a client that went away; the rest of its group is answered as alone', async () => {
    const pid = server.scheduler.enginePid;
    const groups = server.scheduler.stats().groups;
    const restarts = server.scheduler.stats().engineRestarts;
    const body = { max_tokens: 48, threshold: 1 };
    const s = () => server.scheduler.stats();
    const blocker = openai.completions.create({ model: server.modelName, prompt: PROMPTS[1], max_tokens: 8 });
    const ctrl = new AbortController();
    let streamed: Promise<Response> | undefined;
    let kept: Promise<OpenAI.Completion> | undefined;
    // While the engine holds the first request, a stream and a plain request of the same settings and
    // length class queue, and then decode as one lockstep group.
    const prompt = PROMPTS[3];
    await whilePaused(() => {
      if (!streamed && s().runningRows > 0) {
        streamed = fetch(`${server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt, ...body, stream: true, return_steps: true }),
          signal: ctrl.signal,
        });
        kept = openai.completions.create({ model: server.modelName, prompt, ...body });
      }
      return s().queued === 2;
    });
    await blocker;
    const reader = (await (streamed as Promise<Response>)).body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/"sdt_step"/);
    ctrl.abort();
    const answer = await (kept as Promise<OpenAI.Completion>);
    expect(answer.choices[0].text).toBe((await ref.text(prompt, { maxNew: 48, threshold: 1 })).text);
    expect(server.scheduler.stats().groups - groups).toBe(2); // the blocker's, then the shared one
    expect(server.scheduler.enginePid).toBe(pid);
    expect(server.scheduler.stats().engineRestarts).toBe(restarts);
  });

  it('reads a recorded trajectory file for the playground viewer', async () => {
    const settings = { maxNew: 16, block: 8, trajectory: true };
    const [c] = await ref.engine.generate([PROMPTS[0]], settings);
    const path = join(tmp, 'traj.arrow');
    await writeTrajectories(path, [completionToRow('t0', 'ckpt', c, settings)]);
    const res = await fetch(`${server.url}/sdt/trajectory`, { method: 'POST', body: readFileSync(path) });
    expect(res.status).toBe(200);
    const { rows } = (await res.json()) as {
      rows: {
        text: string;
        prompt: string;
        steps: { positions: number[]; tokens: number[]; pieces: string[] }[];
      }[];
    };
    expect(rows).toHaveLength(1);
    expect(rows[0].text).toBe(c.text);
    expect(rows[0].prompt).toBe(PROMPTS[0]);
    expect(rows[0].steps.map((x) => x.positions)).toEqual(c.trajectory?.map((x) => Array.from(x.positions)));
    // Replaying the steps' pieces in position order gives the text back.
    const canvas: string[] = [];
    for (const st of rows[0].steps) {
      st.positions.forEach((p, k) => {
        canvas[p] = st.pieces[k];
      });
    }
    expect(canvas.slice(0, c.tokens.length).join('')).toBe(c.text);
    const bad = await fetch(`${server.url}/sdt/trajectory`, { method: 'POST', body: 'not arrow' });
    expect(bad.status).toBe(400);
  });

  it('answers 504 when a request outlives --timeout, and serves on', async () => {
    const slow = await startServer({ engine: { ckpt, binary: bin }, port: 0, timeoutMs: 300 });
    try {
      const pid = slow.scheduler.enginePid as number;
      process.kill(pid, 'SIGSTOP');
      const r = await postJson(`${slow.url}/v1/completions`, { prompt: PROMPTS[0], max_tokens: 8 });
      expect(r.status).toBe(504);
      expect(r.json.error?.code).toBe('timeout');
      // The engine, once it runs again, reads the cancel and answers the next request.
      process.kill(pid, 'SIGCONT');
      const after = await postJson(`${slow.url}/v1/completions`, { prompt: PROMPTS[0], max_tokens: 8 });
      expect(after.status).toBe(200);
      expect(after.json.choices?.[0].text).toBe((await ref.text(PROMPTS[0], { maxNew: 8 })).text);
      expect(slow.scheduler.enginePid).toBe(pid);
      expect(slow.scheduler.stats().engineRestarts).toBe(0);
    } finally {
      await slow.close();
    }
  });

  it('exposes Prometheus metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/# TYPE sdt_request_latency_seconds histogram/);
    expect(text).toMatch(/sdt_requests_total\{endpoint="\/v1\/completions",status="400"\} \d+/);
    expect(metric(text, 'sdt_completion_tokens_total')).toBeGreaterThan(0);
    expect(metric(text, 'sdt_forward_passes_total')).toBeGreaterThan(0);
    expect(metric(text, 'sdt_queue_depth')).toBe(0);
    expect(metric(text, 'sdt_request_latency_seconds_count')).toBeGreaterThan(10);
  });
});
