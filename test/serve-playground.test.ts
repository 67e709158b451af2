/**
 * The playground of `sdt serve` in headless Chromium (Debian's `chromium`; .ci/run installs it where it
 * can): the page decodes a prompt on load, and its DOM holds the completion the engine gives that prompt
 * alone and one cell per committed position with its step number and confidence; the screenshot shows the
 * committed cells (their border colour, counted in the PNG).
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { builtNative } from './native-build.ts';
import { countColour, readPng } from './png.ts';
import { makeServeCheckpoint, PROMPTS, Reference } from './serve-helpers.ts';

const bin = builtNative() ?? '';
const execFileAsync = promisify(execFile);

function findChromium(): string | null {
  for (const c of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (c && spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0) return c;
  }
  return null;
}
const chromium = findChromium();
const skip = !bin
  ? 'sdt-native is not built (npm run build:native)'
  : !chromium
    ? 'no headless Chromium (apt-get install chromium, or set $CHROMIUM)'
    : '';
if (skip) console.warn(`playground test skipped: ${skip}`);

/** Runs Chromium without blocking this process's event loop, which serves the page. */
async function runChromium(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    chromium as string,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--hide-scrollbars',
      '--window-size=1280,900',
      // Virtual time runs the page's scripts (fetch, the event stream) to completion before the capture.
      '--virtual-time-budget=30000',
      ...args,
    ],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20 },
  );
  return stdout;
}

/**
 * The page's DOM once its decoding is done. Chromium's virtual time can run out while the event stream is
 * still arriving on a loaded machine (the capture is then early, not wrong), so a capture without the
 * page's done mark is taken again, a few times at most; the last one is returned either way.
 */
async function domWhenDone(page: string): Promise<string> {
  let dom = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    dom = await runChromium(['--dump-dom', page]);
    if (/<body[^>]*data-state="done"/.test(dom)) break;
  }
  return dom;
}

const unescapeHtml = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

describe.skipIf(skip !== '')('sdt serve playground in Chromium', () => {
  let server: RunningServer;
  let ref: Reference;
  let dir = '';
  let cleanup: () => void = () => undefined;

  beforeAll(async () => {
    const made = await makeServeCheckpoint(bin);
    dir = made.dir;
    cleanup = made.cleanup;
    server = await startServer({ engine: { ckpt: made.ckpt, binary: bin }, port: 0 });
    ref = await Reference.start(made.ckpt, bin);
  });
  afterAll(async () => {
    await server?.close();
    await ref?.close();
    cleanup();
  });

  it('draws the completion as it decodes, with each position’s step and confidence', async () => {
    const want = await ref.text(PROMPTS[0], { maxNew: 24 });
    const page = `${server.url}/?auto=1&ar=0&max_tokens=24&block=8&prompt=${encodeURIComponent(PROMPTS[0])}`;
    const dom = await domWhenDone(page);
    expect(dom).toMatch(/<body[^>]*data-state="done"/);
    const panel = dom.slice(dom.indexOf('id="panel-diffusion"'), dom.indexOf('id="panel-ar"'));
    const text = /<pre class="text">([\s\S]*?)<\/pre>/.exec(panel)?.[1] ?? '';
    expect(unescapeHtml(text)).toBe(want.text);
    expect(panel).toMatch(new RegExp(`${want.tokens} tokens, \\d+ steps, ${want.passes} passes`));
    // Every generated position is a committed cell; their step numbers run 1..steps in commit order.
    const steps = [
      ...panel.matchAll(
        /class="cell done[^"]*" data-position="(\d+)" data-step="(\d+)" data-confidence="([\d.]+)"/g,
      ),
    ];
    expect(steps.length).toBeGreaterThanOrEqual(want.tokens);
    const stepNumbers = new Set(steps.map((m) => Number(m[2])));
    expect(Math.min(...stepNumbers)).toBe(1);
    for (const m of steps) {
      expect(Number(m[3])).toBeGreaterThanOrEqual(0);
      expect(Number(m[3])).toBeLessThanOrEqual(1);
      expect(panel).toContain(`#${m[2]} `);
    }

    const shot = join(dir, 'playground.png');
    await runChromium([`--screenshot=${shot}`, page]);
    const img = readPng(readFileSync(shot));
    expect(img.width).toBe(1280);
    // Committed cells have a 2-pixel border of exactly rgb(0, 128, 255); nothing else on the page has it.
    const border = countColour(img, 0, 128, 255);
    expect(border).toBeGreaterThan(steps.length * 100);
  });
});
