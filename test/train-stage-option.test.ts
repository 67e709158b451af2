/** `--stage` is an option of `sdt train`: any position, `--stage NAME` or `--stage=NAME`, named errors. */
import { describe, expect, it, vi } from 'vitest';
import { main } from '../bin/main.ts';

async function run(argv: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  try {
    return { code: await main(argv), err, out };
  } finally {
    e.mockRestore();
    o.mockRestore();
  }
}

describe('sdt train --stage', () => {
  it('reaches the stages command wherever the flag stands', async () => {
    for (const argv of [
      ['train', '--stage', 'distill', '--ckpt', '/nonexistent/ckpt', '--out', '/tmp/x'],
      ['train', '--ckpt', '/nonexistent/ckpt', '--out', '/tmp/x', '--stage=distill'],
    ]) {
      const r = await run(argv);
      expect(r.code).toBe(2);
      // The stage command read --ckpt: plain `sdt train` has no --ckpt flag and would reject it instead.
      expect(r.err).toMatch(/\/nonexistent\/ckpt: no config\.json/);
    }
  });
  it('names a bad stage and lists its options under --help', async () => {
    const bad = await run(['train', '--stage=bogus', '--ckpt', 'c', '--out', 'o']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--stage must be one of distill, onpolicy; got "bogus"/);
    const help = await run(['train', '--stage', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--keep-top N/);
    const plain = await run(['train', '--help']);
    expect(plain.out).toMatch(/--stage NAME/);
    expect(plain.out).not.toMatch(/--keep-top/);
  });
});
