/**
 * `npm run bench:serve`: `sdt serve` under 1, 4, 16 and 64 concurrent streaming clients against the same
 * requests sent one at a time to the engine directly (EngineClient, no HTTP), side by side in one run:
 * requests/s, generated tokens/s, p50/p99 latency and time to first token (first streamed text; for the
 * engine, its first step event). Every answer is checked against the engine's own completion of that
 * prompt (greedy decoding), and the bench fails if any request is lost, answered twice or answered wrong.
 *
 *   npm run bench:serve -- [--ckpt DIR (default: the demo's latest block checkpoint, runs/demo/diffusion)]
 *     [--requests 64] [--clients 1,4,16,64] [--max-tokens 32] [--prompts runs/demo/synth/test.jsonl]
 *     [--out runs/bench-serve]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { atomicWriteJson } from '../common/fs.ts';
import { repoRoot } from '../common/native.ts';
import { EngineClient } from '../engine/client.ts';
import { latestCheckpoint } from '../schemas/checkpoint.ts';

const { values } = parseArgs({
  options: {
    ckpt: { type: 'string' },
    requests: { type: 'string', default: '64' },
    clients: { type: 'string', default: '1,4,16,64' },
    'max-tokens': { type: 'string', default: '32' },
    threshold: { type: 'string', default: '0.9' },
    prompts: { type: 'string', default: 'runs/demo/synth/test.jsonl' },
    out: { type: 'string', default: 'runs/bench-serve' },
  },
});
const ckpt =
  values.ckpt ??
  latestCheckpoint('runs/demo/diffusion')?.path ??
  (() => {
    throw new Error(
      'bench:serve: no --ckpt and no checkpoint in runs/demo/diffusion; run `npm run demo` first.',
    );
  })();
const nRequests = Number(values.requests);
const levels = (values.clients as string).split(',').map(Number);
const maxTokens = Number(values['max-tokens']);
const threshold = Number(values.threshold);

const prompts = readFileSync(values.prompts as string, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .slice(0, nRequests)
  .map((l) => JSON.parse(l).prompt as string);
if (prompts.length < nRequests) throw new Error(`${values.prompts} has only ${prompts.length} prompts`);

interface Level {
  label: string;
  clients: number;
  requests: number;
  wallS: number;
  requestsPerS: number;
  tokensPerS: number;
  p50Ms: number;
  p99Ms: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  lost: number;
  duplicated: number;
  wrong: number;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function summarize(
  label: string,
  clients: number,
  wallS: number,
  lat: number[],
  ttft: number[],
  tokens: number,
  check: { lost: number; duplicated: number; wrong: number },
): Level {
  return {
    label,
    clients,
    requests: lat.length,
    wallS,
    requestsPerS: lat.length / wallS,
    tokensPerS: tokens / wallS,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    ttftP50Ms: pct(ttft, 50),
    ttftP99Ms: pct(ttft, 99),
    ...check,
  };
}

// The reference: each request alone, one after the other, straight to an engine of the same checkpoint.
const settings = { maxNew: maxTokens, threshold };
const engine = await EngineClient.start({ ckpt });
const blockSize = engine.info.attention_mode === 'block' ? engine.info.block_size : undefined;
const wire = { ...settings, ...(blockSize ? { block: blockSize } : {}) };
await engine.generate([prompts[0]], wire); // warm-up
const want: string[] = [];
const seqLat: number[] = [];
const seqTtft: number[] = [];
let seqTokens = 0;
const t0 = performance.now();
for (const p of prompts) {
  const s = performance.now();
  let first = -1;
  const [c] = await engine.generate([p], wire, () => {
    if (first < 0) first = performance.now() - s;
  });
  seqLat.push(performance.now() - s);
  seqTtft.push(first);
  seqTokens += c.tokens.length;
  want.push(c.text);
}
const sequential = summarize(
  'engine, one at a time',
  1,
  (performance.now() - t0) / 1000,
  seqLat,
  seqTtft,
  seqTokens,
  {
    lost: 0,
    duplicated: 0,
    wrong: 0,
  },
);
await engine.close();

// The server runs as its own process, as deployed: the clients' parsing does not share its event loop.
const child = spawn(
  process.execPath,
  [join(repoRoot, 'bin', 'sdt.js'), 'serve', '--ckpt', ckpt, '--port', '0', '--max-queue', '1024'],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const url = await new Promise<string>((resolve, reject) => {
  createInterface({ input: child.stdout }).on('line', (l) => {
    const m = / on (http:\/\/\S+)/.exec(l);
    if (m) resolve(m[1]);
  });
  child.once('exit', (code) => reject(new Error(`sdt serve exited (${code}) before it listened`)));
});
const server = { url };

/** One streamed request: its text, latency and time to the first text. */
async function one(prompt: string): Promise<{ text: string; ms: number; ttft: number; tokens: number }> {
  const s = performance.now();
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, threshold, stream: true }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = '';
  let text = '';
  let ttft = -1;
  let tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    for (let at = buf.indexOf('\n\n'); at >= 0; at = buf.indexOf('\n\n')) {
      const line = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6));
      if (ev.error) throw new Error(ev.error.message);
      for (const c of ev.choices) {
        if (c.text && ttft < 0) ttft = performance.now() - s;
        text += c.text;
      }
      if (ev.sdt) tokens = ev.sdt.tokens;
    }
  }
  return { text, ms: performance.now() - s, ttft: ttft < 0 ? performance.now() - s : ttft, tokens };
}

const results: Level[] = [sequential];
for (const clients of levels) {
  await one(prompts[0]); // warm-up
  const answers: ({ text: string; ms: number; ttft: number; tokens: number } | undefined)[] = new Array(
    prompts.length,
  );
  let duplicated = 0;
  let next = 0;
  const ts = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < prompts.length) {
        const i = next++;
        const a = await one(prompts[i]);
        if (answers[i]) duplicated++;
        answers[i] = a;
      }
    }),
  );
  const wallS = (performance.now() - ts) / 1000;
  const got = answers.filter((a) => a !== undefined);
  const wrong = answers.filter((a, i) => a && a.text !== want[i]).length;
  results.push(
    summarize(
      `sdt serve, ${clients} client${clients > 1 ? 's' : ''}`,
      clients,
      wallS,
      got.map((a) => a.ms),
      got.map((a) => a.ttft),
      got.reduce((n, a) => n + a.tokens, 0),
      { lost: prompts.length - got.length, duplicated, wrong },
    ),
  );
}
const metrics = await (await fetch(`${url}/metrics`)).text();
const groups = Number(/^sdt_engine_groups_total (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
child.kill('SIGTERM');

const single = results.find((r) => r.clients === 1 && r.label.startsWith('sdt serve'));
const at16 = results.find((r) => r.clients === 16);
const hardware = `${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, load ${loadavg()[0].toFixed(1)} at the end`;
console.log(
  `bench:serve ${ckpt} (${engine.info.attention_mode}${blockSize ? ` block ${blockSize}` : ''}), ${prompts.length} requests of ${values.prompts}, max_tokens ${maxTokens}, threshold ${threshold}, greedy, 1 engine thread; ${hardware}`,
);
console.log(
  '| run | requests/s | tokens/s | vs sequential | p50 ms | p99 ms | TTFT p50 ms | TTFT p99 ms | lost | twice | wrong |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.label} | ${r.requestsPerS.toFixed(1)} | ${r.tokensPerS.toFixed(0)} | ${(r.tokensPerS / sequential.tokensPerS).toFixed(2)}x | ${r.p50Ms.toFixed(0)} | ${r.p99Ms.toFixed(0)} | ${r.ttftP50Ms.toFixed(0)} | ${r.ttftP99Ms.toFixed(0)} | ${r.lost} | ${r.duplicated} | ${r.wrong} |`,
  );
}
if (single && at16) {
  console.log(
    `16 clients: ${(at16.tokensPerS / sequential.tokensPerS).toFixed(2)}x sequential tokens/s (target >= 3x); p99 ${at16.p99Ms.toFixed(0)} ms = ${(at16.p99Ms / single.p50Ms).toFixed(2)}x the single-client p50, ${(at16.p99Ms / single.p99Ms).toFixed(2)}x its p99 (target <= 2x); ${groups} engine groups in all`,
  );
}
const out = values.out as string;
await atomicWriteJson(join(out, 'bench-serve.json'), {
  ckpt,
  maxTokens,
  threshold,
  hardware,
  results,
  groups,
});
const bad = results.some((r) => r.lost || r.duplicated || r.wrong);
if (bad) {
  console.error('bench:serve: requests were lost, answered twice or answered wrong (see the table)');
  process.exit(1);
}
