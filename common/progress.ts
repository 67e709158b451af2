/**
 * Progress for long jobs: items, rate and ETA. On a TTY one line is redrawn in place; otherwise a plain
 * line is printed every `intervalMs` so CI logs stay readable.
 */
export interface ProgressOptions {
  label: string;
  /** Total items, when known (enables the ETA and percentage). */
  total?: number;
  /** Unit of items, e.g. "files", "steps". */
  unit?: string;
  /** Also count bytes and show MB/s. */
  bytes?: boolean;
  /** Total bytes, when known; with `bytes` the ETA uses bytes instead of items. */
  totalBytes?: number;
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
  /** Force quiet mode (no output at all). */
  quiet?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private items = 0;
  private byteCount = 0;
  private extra = '';
  private readonly start = performance.now();
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly interval: number;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) && !process.env.CI;
    this.interval = opts.intervalMs ?? (this.tty ? 100 : 5000);
  }

  setTotal(total: number): void {
    this.opts.total = total;
  }

  /** Free text shown after the counters (e.g. "loss 3.21"). */
  note(text: string): void {
    this.extra = text;
  }

  tick(items = 1, bytes = 0): void {
    this.items += items;
    this.byteCount += bytes;
    const now = performance.now();
    if (now - this.lastDraw >= this.interval) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  get count(): number {
    return this.items;
  }

  line(): string {
    const elapsed = (performance.now() - this.start) / 1000;
    const unit = this.opts.unit ?? 'items';
    const rate = elapsed > 0 ? this.items / elapsed : 0;
    const parts = [`${this.opts.label}:`];
    const { total, totalBytes } = this.opts;
    parts.push(total ? `${this.items}/${total} ${unit}` : `${this.items} ${unit}`);
    parts.push(`${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} ${unit}/s`);
    if (this.opts.bytes) parts.push(`${(this.byteCount / 1e6 / Math.max(elapsed, 1e-9)).toFixed(2)} MB/s`);
    let remaining = Number.NaN;
    if (this.opts.bytes && totalBytes && this.byteCount > 0) {
      remaining = ((totalBytes - this.byteCount) * elapsed) / this.byteCount;
    } else if (total && this.items > 0) {
      remaining = ((total - this.items) * elapsed) / this.items;
    }
    if (total || totalBytes) parts.push(`ETA ${formatDuration(remaining)}`);
    parts.push(`elapsed ${formatDuration(elapsed)}`);
    if (this.extra) parts.push(this.extra);
    return parts.join('  ');
  }

  private draw(final: boolean): void {
    if (this.opts.quiet) return;
    const text = this.line();
    if (this.tty) this.stream.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    else this.stream.write(`${text}\n`);
  }

  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.draw(true);
  }
}
