// The sdt playground: streams /v1/completions with "return_steps" and draws every generated position as
// it is committed (commit order = step number, and the confidence), AR beside diffusion; replays a
// recorded trajectory file through POST /sdt/trajectory. Plain browser JavaScript, no build step.

const $ = (id) => document.getElementById(id);
let info = null;

/**
 * A panel's grid: one box per block (the engine's block index of each step; AR rows of 16), a cell per
 * generated position in position order; `apply` marks positions as the steps arrive. A new block is laid
 * out with empty cells for the block size from the first position not yet committed; a cell a later block
 * claims moves there (a block checkpoint's first block only completes the prompt's last partial block).
 */
class Canvas {
  constructor(panel, blockSize, byPosition) {
    this.panel = panel;
    this.grid = panel.querySelector('.grid');
    this.grid.textContent = '';
    this.blockSize = Math.max(1, blockSize);
    this.byPosition = byPosition;
    this.blocks = [];
    this.cells = new Map();
    this.committedMax = -1;
    this.steps = 0;
    this.last = [];
  }

  newCell(p) {
    const c = document.createElement('div');
    c.className = 'cell';
    c.dataset.position = String(p);
    c.innerHTML = '<span class="piece"> </span><span class="meta"></span>';
    this.cells.set(p, c);
    return c;
  }

  place(c, b) {
    const box = this.blocks[b];
    if (c.parentNode === box) return;
    const p = Number(c.dataset.position);
    const after = [...box.children].find((x) => Number(x.dataset.position) > p);
    box.insertBefore(c, after ?? null);
  }

  block(b) {
    while (this.blocks.length <= b) {
      const box = document.createElement('div');
      box.className = 'block';
      this.grid.appendChild(box);
      this.blocks.push(box);
      const start = this.committedMax + 1;
      for (let p = start; p < start + this.blockSize; p++) {
        if (!this.cells.has(p)) this.place(this.newCell(p), this.blocks.length - 1);
      }
    }
    return b;
  }

  cell(p, b) {
    const c = this.cells.get(p) ?? this.newCell(p);
    this.place(c, this.block(b));
    return c;
  }

  /** One step: positions, their pieces and confidences; kind "remask" empties positions again. */
  apply(step) {
    this.steps++;
    for (const c of this.last) c.classList.remove('last');
    this.last = [];
    step.positions.forEach((p, k) => {
      const c = this.cell(p, this.byPosition ? Math.floor(p / this.blockSize) : step.block);
      if (step.kind !== 'remask') this.committedMax = Math.max(this.committedMax, p);
      const conf = step.confidences[k] ?? 0;
      if (step.kind === 'remask') {
        c.classList.remove('done');
        c.querySelector('.piece').textContent = ' ';
        c.querySelector('.meta').textContent = '';
        c.style.background = '';
        return;
      }
      c.classList.add('done', 'last');
      c.dataset.step = String(this.steps);
      c.dataset.confidence = conf.toFixed(3);
      // Whitespace made visible: a line break as a return sign, spaces as middle dots.
      c.querySelector('.piece').textContent = step.pieces[k].replace(/\n/g, '\u21b5').replace(/ /g, '\u00b7');
      c.querySelector('.meta').textContent = `#${this.steps} ${conf.toFixed(2)}`;
      c.title = `block ${step.block}, step ${step.step} of the block, ${step.kind}, confidence ${conf.toFixed(3)}`;
      c.style.background = `rgba(255, 170, 0, ${0.15 + 0.6 * conf})`;
      this.last.push(c);
    });
  }
}

function settingsBody(mode) {
  const num = (id) => Number($(id).value);
  const body = {
    prompt: $('prompt').value,
    max_tokens: num('max_tokens'),
    temperature: num('temperature'),
    stream: true,
    return_steps: true,
  };
  if (mode === 'ar') body.mode = 'ar';
  else {
    body.mode = 'diffusion';
    body.block = num('block');
    body.threshold = num('threshold');
    body.order = $('order').value;
  }
  return body;
}

/** Reads a server-sent event stream, calling onEvent with each JSON data object. */
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    for (let at = buf.indexOf('\n\n'); at >= 0; at = buf.indexOf('\n\n')) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function decode(mode, panel) {
  const body = settingsBody(mode);
  const canvas = new Canvas(panel, mode === 'ar' ? 16 : body.block, mode === 'ar');
  const text = panel.querySelector('.text');
  const stats = panel.querySelector('.stats');
  text.textContent = '';
  stats.textContent = 'decoding…';
  const t0 = performance.now();
  const res = await fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const err = await res.json().catch(() => ({ error: { message: res.statusText } }));
    stats.textContent = `error ${res.status}: ${err.error.message}`;
    panel.dataset.state = 'error';
    return;
  }
  let final = null;
  await readEvents(res, (ev) => {
    if (ev.error) {
      stats.textContent = `error: ${ev.error.message}`;
      return;
    }
    if (ev.sdt_step) canvas.apply(ev.sdt_step);
    for (const c of ev.choices ?? []) if (c.text) text.textContent += c.text;
    if (ev.sdt) final = ev.sdt;
  });
  const s = (performance.now() - t0) / 1000;
  if (final) {
    const perPass = final.forward_passes ? final.tokens / final.forward_passes : 0;
    stats.textContent =
      `${final.tokens} tokens, ${final.steps} steps, ${final.forward_passes} passes: ` +
      `${(final.tokens / s).toFixed(1)} tokens/s, ${perPass.toFixed(2)} tokens per pass`;
  }
  panel.dataset.state = 'done';
}

async function run() {
  $('run').disabled = true;
  $('status').textContent = '';
  try {
    // One after the other, so each panel's tokens/s is its own.
    await decode('diffusion', $('panel-diffusion'));
    if ($('with_ar').checked) await decode('ar', $('panel-ar'));
  } catch (e) {
    $('status').textContent = String(e);
  } finally {
    $('run').disabled = false;
    document.body.dataset.state = 'done';
  }
}

let trajRows = [];

function showTrajectory() {
  const row = trajRows[Number($('traj_row').value) || 0];
  if (!row) return;
  const k = Number($('traj_step').value);
  const panel = $('panel-traj');
  const settings = JSON.parse(row.settings || '{}');
  const canvas = new Canvas(
    panel,
    settings.mode === 'ar' ? 16 : (settings.block ?? 32),
    settings.mode === 'ar',
  );
  for (const s of row.steps.slice(0, k)) canvas.apply(s);
  $('traj_step_label').textContent = `${k} / ${row.steps.length}`;
  panel.querySelector('.text').textContent = row.prompt + row.text;
  panel.querySelector('.stats').textContent =
    `${row.id}: ${row.tokens} tokens, ${row.steps.length} steps, ${row.forward_passes} passes`;
}

async function openTrajectory(file) {
  const res = await fetch('/sdt/trajectory', { method: 'POST', body: await file.arrayBuffer() });
  const out = await res.json();
  if (!res.ok) {
    $('panel-traj').querySelector('.stats').textContent = `error: ${out.error.message}`;
    return;
  }
  trajRows = out.rows;
  $('traj_row').innerHTML = trajRows.map((r, i) => `<option value="${i}">${i}: ${r.id}</option>`).join('');
  selectRow();
}

function selectRow() {
  const row = trajRows[Number($('traj_row').value) || 0];
  $('traj_step').max = String(row.steps.length);
  $('traj_step').value = String(row.steps.length);
  showTrajectory();
}

async function init() {
  const res = await fetch('/sdt/info');
  const all = (await res.json()).models;
  info = all[0];
  if (all[1]) $('panel-ar').querySelector('h2').firstChild.textContent = `AR (${all[1].model}) `;
  $('model').textContent =
    `${info.model}: ${info.attention_mode} attention, block ${info.block_size}, context ${info.max_position_embeddings}, ${info.device}`;
  if (info.attention_mode === 'block') $('block').value = String(info.block_size);
  $('run').addEventListener('click', run);
  $('traj_file').addEventListener('change', (e) => e.target.files[0] && openTrajectory(e.target.files[0]));
  $('traj_row').addEventListener('change', selectRow);
  $('traj_step').addEventListener('input', showTrajectory);
  // ?prompt=...&max_tokens=...&auto=1 starts decoding at once (links, and the browser test).
  const q = new URLSearchParams(location.search);
  for (const k of ['prompt', 'max_tokens', 'block', 'threshold', 'temperature'])
    if (q.has(k)) $(k).value = q.get(k);
  if (q.get('ar') === '0') $('with_ar').checked = false;
  if (q.get('auto') === '1') run();
}

init();
