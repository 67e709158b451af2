/**
 * A bounded soak of `sdt serve` on loopback: 90 requests, 10 at a time, a seeded mix of good ones (plain and
 * streamed, several lengths), bad ones and ones the client cancels part-way. Every good request must be
 * answered with exactly the completion the engine gives it alone, every bad one with an OpenAI-style 4xx,
 * and the server must end idle and healthy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { builtNative } from './native-build.ts';
import { mulberry32 } from './prng.ts';
import { makeServeCheckpoint, metric, PROMPTS, postJson, Reference } from './serve-helpers.ts';

const bin = builtNative() ?? '';
if (!bin) console.warn('serve soak skipped: sdt-native is not built (npm run build:native)');

const BAD_BODIES: unknown[] = [
  '{"prompt": ',
  '[1, 2, 3]',
  { prompt: 'x', temperature: -1 },
  { prompt: 'x', n: 0 },
  { prompt: 'x', max_tokens: 10_000 },
  { prompt: 'x', block: 'eight' },
  { prompt: 'x', model: 'other' },
  { prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] },
  { prompt: [[]] },
];

/** The text of an SSE completion stream (choice 0), or the error event it carried. */
async function readStream(res: Response): Promise<string> {
  const body = await res.text();
  let text = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const ev = JSON.parse(line.slice(6));
    if (ev.error) throw new Error(`stream error: ${ev.error.message}`);
    for (const c of ev.choices) text += c.text;
  }
  return text;
}

describe.skipIf(!bin)('sdt serve soak', () => {
  let server: RunningServer;
  let ref: Reference;
  let cleanup: () => void = () => undefined;

  beforeAll(async () => {
    const made = await makeServeCheckpoint(bin);
    cleanup = made.cleanup;
    server = await startServer({ engine: { ckpt: made.ckpt, binary: bin }, port: 0, maxQueue: 64 });
    ref = await Reference.start(made.ckpt, bin);
  });
  afterAll(async () => {
    await server?.close();
    await ref?.close();
    cleanup();
  });

  it('answers every good request correctly among bad and cancelled ones', async () => {
    const rnd = mulberry32(17);
    const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
    const url = `${server.url}/v1/completions`;
    const want = new Map<string, Promise<string>>();
    const expected = (prompt: string, maxNew: number) => {
      const k = `${maxNew}:${prompt}`;
      if (!want.has(k))
        want.set(
          k,
          ref.text(prompt, { maxNew }).then((r) => r.text),
        );
      return want.get(k) as Promise<string>;
    };
    const outcome = { good: 0, goodRight: 0, bad: 0, badRight: 0, cancelled: 0, cancelledAnswered: 0 };
    const one = async () => {
      const kind = rnd();
      const prompt = pick(PROMPTS);
      const maxNew = pick([8, 16, 24, 40]);
      const stream = rnd() < 0.5;
      const body = JSON.stringify({ prompt, max_tokens: maxNew, stream });
      if (kind < 0.5) {
        outcome.good++;
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(res.status, res.status === 200 ? '' : await res.clone().text()).toBe(200);
        const text = stream
          ? await readStream(res)
          : ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
        expect(text).toBe(await expected(prompt, maxNew));
        outcome.goodRight++;
      } else if (kind < 0.75) {
        outcome.bad++;
        const r = await postJson(url, pick(BAD_BODIES));
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        expect(typeof r.json.error?.message).toBe('string');
        outcome.badRight++;
      } else {
        outcome.cancelled++;
        const ctrl = new AbortController();
        setTimeout(() => ctrl.abort(), Math.floor(rnd() * 20));
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: ctrl.signal,
          });
          const text = stream
            ? await readStream(res)
            : ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
          // Answered before the abort landed: then it must be right too.
          expect(text).toBe(await expected(prompt, maxNew));
          outcome.cancelledAnswered++;
        } catch (e) {
          expect((e as Error).name).toBe('AbortError');
        }
      }
    };
    const total = 90;
    let started = 0;
    const worker = async () => {
      while (started < total) {
        started++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    expect(outcome.good + outcome.bad + outcome.cancelled).toBe(total);
    expect(outcome.goodRight).toBe(outcome.good);
    expect(outcome.badRight).toBe(outcome.bad);
    expect(outcome.good).toBeGreaterThan(20);
    expect(outcome.cancelled).toBeGreaterThan(10);
    // Nothing is left running or queued, and the server still answers.
    let idle = false;
    for (let i = 0; i < 400 && !idle; i++) {
      const s = server.scheduler.stats();
      idle = s.queued === 0 && s.runningRows === 0 && s.engineUp;
      if (!idle) await new Promise((r) => setTimeout(r, 25));
    }
    expect(idle).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const m = await (await fetch(`${server.url}/metrics`)).text();
    expect(metric(m, 'sdt_queue_depth')).toBe(0);
    const last = await postJson(url, { prompt: PROMPTS[0], max_tokens: 8 });
    expect(last.json.choices?.[0].text).toBe(await expected(PROMPTS[0], 8));
  });
});
