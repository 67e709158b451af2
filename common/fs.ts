import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A temporary name beside `path`, so the final rename stays on one filesystem (and is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Write a file atomically: readers see the old content or the new one, never a torn file. */
export async function atomicWriteFile(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function atomicWriteJson(path: string, value: unknown): Promise<void> {
  await atomicWriteFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A write stream to a temporary file that becomes `path` only on commit(); abort() removes it.
 * For large outputs (shards, stream files) that must never be visible half-written.
 */
export class AtomicWriteStream {
  readonly tmp: string;
  readonly stream: WriteStream;
  constructor(readonly path: string) {
    this.tmp = tempPathFor(path);
    this.stream = createWriteStream(this.tmp);
  }
  static async open(path: string): Promise<AtomicWriteStream> {
    await mkdir(dirname(path), { recursive: true });
    return new AtomicWriteStream(path);
  }
  write(chunk: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ok = this.stream.write(chunk, (err) => (err ? reject(err) : undefined));
      if (ok) resolve();
      else this.stream.once('drain', resolve);
    });
  }
  async commit(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    await rename(this.tmp, this.path);
  }
  async abort(): Promise<void> {
    this.stream.destroy();
    await rm(this.tmp, { force: true });
  }
}

/**
 * A file written in pieces as they are produced (writev per call, in call order) under a temporary name,
 * which becomes `path` on commit(); abort() removes it. The temporary file is opened by the first write.
 */
export class AtomicChunkFile {
  private readonly tmp: string;
  private handle: Promise<FileHandle> | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
    this.tmp = tempPathFor(path);
  }

  private open(): Promise<FileHandle> {
    this.handle ??= mkdir(dirname(this.path), { recursive: true }).then(() => open(this.tmp, 'w'));
    return this.handle;
  }

  /** Queues the pieces after those of earlier calls; resolves once they are written. */
  write(chunks: Uint8Array[]): Promise<void> {
    if (chunks.length === 0) return this.queue;
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    this.queue = this.queue.then(async () => {
      const { bytesWritten } = await (await this.open()).writev(chunks);
      if (bytesWritten !== total) throw new Error(`${this.path}: wrote ${bytesWritten} of ${total} bytes`);
    });
    return this.queue;
  }

  /** Resolves once every piece queued so far is written. */
  written(): Promise<void> {
    return this.queue;
  }

  async commit(): Promise<void> {
    await this.queue;
    const fh = await this.open();
    await fh.close();
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    await this.queue.catch(() => undefined);
    if (this.handle) await (await this.handle).close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}
