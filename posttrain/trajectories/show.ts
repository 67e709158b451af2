/** Pictures of a recorded trajectory (`sdt traj show`): SVG and HTML pages of its commit steps. */
import { escapeXml } from '../../common/svg.ts';
import type { TrajectoryRow } from '../../schemas/trajectory.ts';
import { printable, type TokenText } from '../sample/render.ts';
import { replayStates } from './record.ts';

/** For every generated position, the index of the step that last set it (-1: never set). */
export function commitStepOf(row: TrajectoryRow): Int32Array {
  const at = new Int32Array(row.tokens.length).fill(-1);
  row.steps.forEach((s, k) => {
    for (const p of s.positions) if (p < at.length) at[p] = s.kind === 'remask' ? -1 : k;
  });
  return at;
}

/** Visible text of a token in a picture: whitespace drawn as glyphs so it takes room. */
const visible = (t: string) => printable(t.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/ /g, '·'));

/** Colour of step k of n: early steps blue, late steps red. */
function stepColor(k: number, n: number): string {
  const x = n <= 1 ? 0 : k / (n - 1);
  return `hsl(${Math.round(220 - 220 * x)}, 70%, 80%)`;
}

/** An SVG page: the completion laid out as text, each token boxed in the colour of its commit step. */
export function trajectorySvg(row: TrajectoryRow, text: TokenText): string {
  const at = commitStepOf(row);
  const n = row.steps.length;
  const charW = 8.4;
  const lineH = 22;
  const maxW = 960;
  const items: string[] = [];
  let x = 10;
  let y = 40;
  for (let p = 0; p < row.tokens.length; p++) {
    const raw = text(row.tokens[p]);
    const t = visible(raw);
    const w = Math.max(1, [...t].length) * charW + 2;
    if (x + w > maxW) {
      x = 10;
      y += lineH;
    }
    const k = at[p];
    const s = k >= 0 ? row.steps[k] : null;
    const title = s ? `pos ${p} token ${row.tokens[p]} block ${s.block} step ${s.step} (#${k})` : `pos ${p}`;
    items.push(
      `<g><title>${escapeXml(title)}</title><rect x="${x.toFixed(1)}" y="${y - 15}" width="${w.toFixed(1)}" height="19" rx="3" fill="${k >= 0 ? stepColor(k, n) : '#eee'}"/>` +
        `<text x="${(x + 1).toFixed(1)}" y="${y}">${escapeXml(t)}</text></g>`,
    );
    x += w + 1;
    if (raw.includes('\n')) {
      x = 10;
      y += lineH;
    }
  }
  const height = y + 50;
  const legend = `<text x="10" y="${height - 14}" font-size="12">${escapeXml(`${row.id}: ${row.tokens.length} tokens in ${n} steps, ${row.forwardPasses} forward passes; colour = step (blue first, red last)`)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${maxW + 20}" height="${height}" font-family="monospace" font-size="14">
<text x="10" y="18" font-size="12">${escapeXml(`prompt: ${row.prompt.length} tokens`)}</text>
${items.join('\n')}
${legend}
</svg>
`;
}

/** An HTML page with the SVG and a slider that scrubs through the steps. */
export function trajectoryHtml(row: TrajectoryRow, text: TokenText, mask: number): string {
  const frames = replayStates(row, mask).map((s) => Array.from(s));
  const vocab: Record<number, string> = {};
  for (const f of frames)
    for (const id of f) if (!(id in vocab) && id !== mask) vocab[id] = printable(text(id));
  const data = JSON.stringify({ frames, vocab, mask, steps: row.steps.map((s) => s.positions) });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeXml(row.id)} trajectory</title>
<style>body{font-family:sans-serif} #canvas{font-family:monospace;white-space:pre-wrap;border:1px solid #ccc;padding:8px}
.m{color:#bbb}.n{background:#9f9}</style></head><body>
<h3>${escapeXml(row.id)}: ${row.tokens.length} tokens, ${row.steps.length} steps, ${row.forwardPasses} forward passes</h3>
<input id="step" type="range" min="0" max="${Math.max(0, frames.length - 1)}" value="${Math.max(0, frames.length - 1)}" style="width:80%"> <span id="label"></span>
<div id="canvas"></div>
<h4>Commit step of each token</h4>
${trajectorySvg(row, text)}
<script>
const D = ${data.replace(/</g, '\\u003c')};
const esc = (s) => s.replace(/&/g,'&amp;').replace(/</g,'&lt;');
function show(k) {
  const f = D.frames[k] || [];
  const fresh = new Set(D.steps[k] || []);
  document.getElementById('canvas').innerHTML = f.map((id, p) => id === D.mask ? '<span class="m">\\u2591</span>'
    : '<span' + (fresh.has(p) ? ' class="n"' : '') + '>' + esc(D.vocab[id]) + '</span>').join('');
  document.getElementById('label').textContent = 'step ' + (k + 1) + ' / ' + D.frames.length;
}
const s = document.getElementById('step');
s.addEventListener('input', () => show(+s.value));
show(+s.value);
</script></body></html>
`;
}
