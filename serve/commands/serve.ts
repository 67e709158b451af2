/** `sdt serve`: an OpenAI-compatible HTTP server and a playground over one engine (docs/serve.md). */
import { type CommandSpec, num, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { startServer } from '../server.ts';

export const command: CommandSpec = {
  name: 'serve',
  summary: 'serve a checkpoint over HTTP: OpenAI completions API, metrics, a decoding playground',
  description: `
POST /v1/completions (and /v1/chat/completions, which says 400 for checkpoints without a chat template),
GET /v1/models, /health, /metrics (Prometheus) and the playground at /. Concurrent requests with the same
settings share the engine's lockstep groups of up to 16 rows. See docs/serve.md.`,
  options: {
    ckpt: {
      type: 'string',
      description: 'checkpoint directory (config.json, model.safetensors, tokenizer.json)',
      arg: 'DIR',
    },
    host: { type: 'string', description: 'address to listen on', default: '127.0.0.1' },
    port: {
      type: 'number',
      min: 0,
      max: 65535,
      integer: true,
      description: 'port to listen on (0: any free port)',
      default: 8000,
    },
    device: {
      type: 'string',
      description: 'where the engine runs the model; cuda needs a CUDA build and a GPU',
      default: 'cpu',
      choices: ['cpu', 'cuda'],
    },
    'max-queue': {
      type: 'number',
      min: 0,
      integer: true,
      description: 'requests that may wait for the engine; more get 429',
      default: 256,
      arg: 'N',
    },
    timeout: {
      type: 'number',
      min: 0,
      minExclusive: true,
      description: 'seconds a request may take before it gets 504',
      default: 120,
      arg: 'S',
    },
    'max-body': {
      type: 'number',
      min: 1,
      integer: true,
      description: 'largest request body in bytes (more gets 413)',
      default: 1048576,
      arg: 'BYTES',
    },
    'model-name': {
      type: 'string',
      description: 'model id in /v1/models [default: the checkpoint folder name]',
      arg: 'NAME',
    },
    threads: {
      type: 'number',
      min: 0,
      integer: true,
      description: 'native threads of the engine (0 = OMP_NUM_THREADS if set, else 1)',
      default: 0,
      arg: 'N',
    },
    tokenizer: { type: 'string', description: 'tokenizer.json [default: CKPT/tokenizer.json]', arg: 'FILE' },
    'ar-ckpt': {
      type: 'string',
      description:
        'an autoregressive checkpoint served beside --ckpt (mode "ar" requests and the playground\'s AR panel)',
      arg: 'DIR',
    },
    'ar-model-name': {
      type: 'string',
      description: 'model id of --ar-ckpt [default: its folder name]',
      arg: 'NAME',
    },
    'random-init': {
      type: 'number',
      min: 0,
      integer: true,
      description: 'testing: a random model of --config instead of --ckpt',
      arg: 'SEED',
    },
    config: { type: 'string', description: 'testing: config.json for --random-init', arg: 'FILE' },
  },
  examples: [
    'sdt serve --ckpt runs/recipe/diffusion/checkpoints/step-000600 --port 8000',
    'curl -s localhost:8000/v1/completions -H \'content-type: application/json\' -d \'{"prompt":"def add(a, b):","max_tokens":32}\'',
  ],
  async run(o) {
    const ckpt = optStr(o, 'ckpt');
    const seed = o['random-init'];
    if (!ckpt && seed === undefined)
      throw new UserError('--ckpt DIR is required (a checkpoint written by `sdt train`).');
    const config = optStr(o, 'config');
    if (seed !== undefined && !config)
      throw new UserError('--random-init needs --config FILE (a model config.json).');
    const threads = num(o, 'threads');
    const arCkpt = optStr(o, 'ar-ckpt');
    const device = str(o, 'device') === 'cuda' ? 'cuda' : 'cpu';
    const s = await startServer({
      engine: {
        ...(ckpt ? { ckpt } : { randomInit: { seed: Number(seed), config: config ?? '' } }),
        tokenizer: optStr(o, 'tokenizer'),
        device,
        ...(threads > 0 ? { threads } : {}),
      },
      host: str(o, 'host'),
      port: num(o, 'port'),
      maxQueue: num(o, 'max-queue'),
      timeoutMs: num(o, 'timeout') * 1000,
      maxBodyBytes: num(o, 'max-body'),
      modelName: optStr(o, 'model-name'),
      ...(arCkpt
        ? {
            arEngine: { ckpt: arCkpt, device, ...(threads > 0 ? { threads } : {}) },
            arModelName: optStr(o, 'ar-model-name'),
          }
        : {}),
    });
    console.log(`sdt serve: ${s.modelName} on ${s.url} (playground ${s.url}/, API ${s.url}/v1)`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await s.close();
    return 0;
  },
};
