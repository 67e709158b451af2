/**
 * `sdt serve`'s HTTP server (Node's own http): the OpenAI completions API over one engine (serve/scheduler.ts
 * batches concurrent requests into its lockstep groups), health, Prometheus metrics, a trajectory reader
 * for the playground, and the playground's static files. Every error is OpenAI's JSON error shape with its
 * status; nothing a client sends stops the server.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UserError } from '../common/errors.ts';
import type { EngineOptions } from '../engine/client.ts';
import type { Tokenizer } from '../pipelines/tokenizer/types.ts';
import { readTrajectories } from '../posttrain/trajectories/record.ts';
import type { WireResult, WireStepEvent } from '../schemas/engine.ts';
import { Metrics } from './metrics.ts';
import {
  ApiError,
  type CompletionRequest,
  completionId,
  type FinishedRow,
  finishRow,
  parseCompletionRequest,
  RowText,
  usageOf,
} from './openai.ts';
import { groupPasses, JobError, Scheduler } from './scheduler.ts';

export interface ServeOptions {
  engine: EngineOptions;
  host?: string;
  /** 0 picks a free port (tests). */
  port?: number;
  maxQueue?: number;
  /** A request not answered in this time gets 504 (its rows are dropped). */
  timeoutMs?: number;
  /** Largest request body; more gets 413. */
  maxBodyBytes?: number;
  /** Name in /v1/models and the "model" field; default the checkpoint directory's name. */
  modelName?: string;
  /**
   * A second, autoregressive checkpoint served beside the first (the playground's AR panel): requests that
   * name it, or ask for mode "ar", go to its own engine.
   */
  arEngine?: EngineOptions;
  arModelName?: string;
}

/** One served checkpoint: its name and the scheduler in front of its engine. */
interface Served {
  name: string;
  scheduler: Scheduler;
}

function nameOf(e: EngineOptions, given?: string): string {
  if (given) return given;
  return e.ckpt ? basename(e.ckpt.replace(/\/+$/, '')) : `random-init-${e.randomInit?.seed ?? 0}`;
}

const PLAYGROUND_DIR = join(import.meta.dirname, 'playground');
const PLAYGROUND_FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/playground.js': 'playground.js',
  '/playground.css': 'playground.css',
};
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  scheduler: Scheduler;
  metrics: Metrics;
  modelName: string;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(
        new ApiError(
          413,
          `the body is ${declared} bytes; at most ${limit} (--max-body)`,
          'invalid_request_error',
          null,
          'body_too_large',
        ),
      );
      return;
    }
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(
          new ApiError(
            413,
            `the body is over ${limit} bytes (--max-body)`,
            'invalid_request_error',
            null,
            'body_too_large',
          ),
        );
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ApiError(
      400,
      `the body is not valid JSON: ${(e as Error).message}`,
      'invalid_request_error',
      null,
      'bad_json',
    );
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof JobError) {
    const status = e.status === 499 ? 400 : e.status;
    return new ApiError(
      status,
      e.message,
      e.status >= 500 ? 'server_error' : 'invalid_request_error',
      null,
      e.type,
    );
  }
  return new ApiError(500, (e as Error).message ?? String(e), 'server_error');
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const metrics = new Metrics();
  const start = (engine: EngineOptions) =>
    Scheduler.start({
      engine,
      maxQueue: o.maxQueue ?? 256,
      onGroup: (rows, passes) => {
        metrics.groups++;
        metrics.groupRows += rows;
        metrics.forwardPasses += passes;
      },
    });
  const scheduler = await start(o.engine);
  const modelName = nameOf(o.engine, o.modelName);
  const main: Served = { name: modelName, scheduler };
  const served = [main];
  if (o.arEngine) {
    const name = nameOf(o.arEngine, o.arModelName);
    if (name === modelName) {
      for (const m of served) await m.scheduler.close();
      throw new UserError(`both checkpoints are named "${name}": give one --ar-model-name`);
    }
    served.push({ name, scheduler: await start(o.arEngine) });
  }
  const arModel = served[1];
  const created = Math.floor(Date.now() / 1000);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const maxBody = o.maxBodyBytes ?? 1 << 20;
  const tokOf = (m: Served): Tokenizer => {
    const t = m.scheduler.tokenizer;
    if (!t)
      throw new ApiError(
        503,
        `no tokenizer is loaded for ${m.name} (its checkpoint has no tokenizer.json)`,
        'server_error',
      );
    return t;
  };

  /** The checkpoint a body asks for: by "model", else the AR one for mode "ar" when there is one. */
  function target(body: unknown): Served {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (b.model !== undefined) {
      const m = served.find((x) => x.name === b.model);
      if (!m) {
        throw new ApiError(
          404,
          `model "${String(b.model)}" is not served here; GET /v1/models lists ${served.map((x) => `"${x.name}"`).join(', ')}`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
      }
      return m;
    }
    return b.mode === 'ar' && arModel ? arModel : main;
  }

  function totals() {
    const all = served.map((m) => m.scheduler.stats());
    return {
      queued: all.reduce((n, x) => n + x.queued, 0),
      runningRows: all.reduce((n, x) => n + x.runningRows, 0),
      engineUp: all.every((x) => x.engineUp),
      engineRestarts: all.reduce((n, x) => n + x.engineRestarts, 0),
    };
  }

  async function completions(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const body = parseJson(await readBody(req, maxBody));
    const m = target(body);
    const cr = parseCompletionRequest(body, m.scheduler.info, tokOf(m), m.name);
    // Cancelled when the client goes away before its answer is complete, or after the timeout.
    const ctrl = new AbortController();
    const timer = setTimeout(
      () => ctrl.abort(new JobError(504, 'timeout', `no answer within ${timeoutMs / 1000} s (--timeout)`)),
      timeoutMs,
    );
    res.on('close', () => {
      if (!res.writableFinished)
        ctrl.abort(new JobError(499, 'cancelled', 'the client closed the connection'));
    });
    try {
      return cr.stream
        ? await streamCompletion(m, cr, res, ctrl.signal)
        : await plainCompletion(m, cr, res, ctrl.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  function rowsOf(cr: CompletionRequest): Int32Array[] {
    return cr.prompts.flatMap((p) => Array.from({ length: cr.n }, () => p));
  }

  function account(rows: FinishedRow[], cr: CompletionRequest, results: WireResult[]) {
    const usage = usageOf(
      rows,
      cr.prompts.reduce((n, p) => n + p.length, 0),
      groupPasses(results),
    );
    metrics.promptTokens += usage.prompt_tokens;
    metrics.completionTokens += usage.completion_tokens;
    return usage;
  }

  async function plainCompletion(
    m: Served,
    cr: CompletionRequest,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<number> {
    const results = await m.scheduler.submit({ rows: rowsOf(cr), settings: cr.settings }, signal);
    const rows = results.map((r) => finishRow(r, tokOf(m), cr.stop));
    sendJson(res, 200, {
      id: completionId(),
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: m.name,
      choices: rows.map((r, i) => ({
        text: r.text,
        index: i,
        logprobs: null,
        finish_reason: r.finishReason,
        sdt: { steps: r.steps, forward_passes: r.forwardPasses, tokens: r.tokens },
      })),
      usage: account(rows, cr, results),
    });
    return 200;
  }

  async function streamCompletion(
    m: Served,
    cr: CompletionRequest,
    res: ServerResponse,
    signal: AbortSignal,
  ): Promise<number> {
    const t = tokOf(m);
    const id = completionId();
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: m.name,
      choices,
      ...extra,
    });
    // Events are gathered and written once per turn of the event loop: the engine's step lines arrive
    // in bursts, and one write per step cost a system call and a wake-up of the client each.
    let pending = '';
    const flush = () => {
      if (pending && !res.writableEnded) res.write(pending);
      pending = '';
    };
    const send = (obj: unknown) => {
      if (!pending) setImmediate(flush);
      pending += `data: ${JSON.stringify(obj)}\n\n`;
    };
    const live = cr.settings.rule !== 'remask' && !(cr.settings.revisePasses ?? 0);
    const texts = rowsOf(cr).map(
      () => new RowText(t, cr.settings.maxNew, m.scheduler.info.eos_token_id, cr.stop, live),
    );
    const onStep = (row: number, e: WireStepEvent) => {
      if (!res.headersSent) openStream();
      const delta = texts[row].step(e);
      const step = cr.returnSteps
        ? {
            sdt_step: {
              index: row,
              block: e.block,
              step: e.step,
              kind: e.kind,
              positions: e.positions,
              tokens: e.tokens,
              pieces: e.tokens.map((x) => t.decode([x])),
              confidences: e.confidences,
            },
          }
        : {};
      if (delta || cr.returnSteps)
        send(chunk([{ text: delta, index: row, logprobs: null, finish_reason: null }], step));
    };
    const openStream = () =>
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
    let results: WireResult[];
    try {
      results = await m.scheduler.submit({ rows: rowsOf(cr), settings: cr.settings, onStep }, signal);
    } catch (e) {
      if (!res.headersSent) throw e;
      // The stream is open: the error goes as an event, as OpenAI's servers send it.
      const err = asApiError(e);
      send(err.body());
      flush();
      res.end();
      return err.status;
    }
    if (!res.headersSent) openStream();
    const rows = results.map((r) => finishRow(r, t, cr.stop));
    rows.forEach((r, i) => {
      send(
        chunk([{ text: texts[i].finish(r.text), index: i, logprobs: null, finish_reason: r.finishReason }], {
          sdt: { steps: r.steps, forward_passes: r.forwardPasses, tokens: r.tokens },
        }),
      );
    });
    const usage = account(rows, cr, results);
    if (cr.includeUsage) send(chunk([], { usage }));
    pending += 'data: [DONE]\n\n';
    flush();
    res.end();
    return 200;
  }

  async function trajectory(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const bytes = await readBody(req, 64 * maxBody);
    const dir = await mkdtemp(join(tmpdir(), 'sdt-serve-traj-'));
    try {
      const path = join(dir, 'upload.arrow');
      await writeFile(path, bytes);
      let rows: Awaited<ReturnType<typeof readTrajectories>>;
      try {
        rows = await readTrajectories(path);
      } catch (e) {
        throw new ApiError(400, `not a trajectory file: ${(e as Error).message.replace(path, 'the upload')}`);
      }
      const t = scheduler.tokenizer;
      const piece = (x: number) => (t ? t.decode([x]) : `#${x}`);
      sendJson(res, 200, {
        rows: rows.map((r) => ({
          id: r.id,
          prompt: t
            ? t.decode(r.prompt[0] === scheduler.info.bos_token_id ? r.prompt.subarray(1) : r.prompt)
            : '',
          text: r.text,
          eos: r.eos,
          tokens: r.tokens.length,
          forward_passes: r.forwardPasses,
          settings: r.settings,
          steps: r.steps.map((s) => ({
            block: s.block,
            step: s.step,
            kind: s.kind,
            positions: Array.from(s.positions),
            tokens: Array.from(s.tokens),
            pieces: Array.from(s.tokens, piece),
            confidences: Array.from(s.confidences),
          })),
        })),
      });
      return 200;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const method = req.method ?? 'GET';
    const only = (m: string) => {
      if (method !== m)
        throw new ApiError(
          405,
          `${path} takes ${m}, not ${method}`,
          'invalid_request_error',
          null,
          'method_not_allowed',
        );
    };
    if (path === '/v1/completions') {
      only('POST');
      return completions(req, res);
    }
    if (path === '/v1/chat/completions') {
      only('POST');
      const m = target(parseJson(await readBody(req, maxBody)));
      throw new ApiError(
        400,
        `model "${m.name}" has no chat template (sdt checkpoints are code-completion models); use POST /v1/completions`,
        'invalid_request_error',
        'messages',
        'no_chat_template',
      );
    }
    if (path === '/v1/models') {
      only('GET');
      sendJson(res, 200, {
        object: 'list',
        data: served.map((m) => ({ id: m.name, object: 'model', created, owned_by: 'sdt' })),
      });
      return 200;
    }
    if (path === '/health') {
      const s = totals();
      const status = s.engineUp ? 200 : 503;
      sendJson(res, status, {
        status: s.engineUp ? 'ok' : 'engine_restarting',
        models: served.map((m) => m.name),
        device: scheduler.info.device,
        queued: s.queued,
        running_rows: s.runningRows,
        engine_restarts: s.engineRestarts,
      });
      return status;
    }
    if (path === '/metrics') {
      const text = metrics.render(totals());
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(text);
      return 200;
    }
    if (path === '/sdt/info') {
      sendJson(res, 200, {
        models: served.map((m) => ({ model: m.name, ...m.scheduler.info })),
      });
      return 200;
    }
    if (path === '/sdt/trajectory') {
      only('POST');
      return trajectory(req, res);
    }
    const file = PLAYGROUND_FILES[path];
    if (file && method === 'GET') {
      const text = await readFile(join(PLAYGROUND_DIR, file));
      res.writeHead(200, { 'content-type': CONTENT_TYPES[file.split('.').pop() ?? ''] ?? 'text/plain' });
      res.end(text);
      return 200;
    }
    throw new ApiError(404, `no route ${method} ${path}`, 'invalid_request_error', null, 'not_found');
  }

  const server = createServer((req, res) => {
    const t0 = performance.now();
    const path = (req.url ?? '/').split('?')[0];
    const endpoint =
      path.startsWith('/v1/') || path.startsWith('/sdt/') || path === '/health' || path === '/metrics'
        ? path
        : 'other';
    route(req, res, path)
      .catch((e) => {
        const err = asApiError(e);
        if (!res.headersSent) {
          if (err.status === 413) res.setHeader('connection', 'close');
          sendJson(res, err.status, err.body());
        } else if (!res.writableEnded) res.end();
        return err.status;
      })
      .then((status) => {
        if (endpoint !== '/metrics') metrics.request(endpoint, status, (performance.now() - t0) / 1000);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${o.host ?? '127.0.0.1'}:${port}`,
    port,
    server,
    scheduler,
    metrics,
    modelName,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await scheduler.close();
    },
  };
}
