/**
 * sdt-native serve bounds what one request can make it hold: a request line over its limit is answered with
 * a named bad_request error and skipped, and the engine goes on answering; its flags are checked by name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { tempDir } from './data-helpers.ts';
import { tinyModelConfig } from './native-build.ts';
import { nativeOrBuild } from './train-helpers.ts';

const bin = nativeOrBuild();

describe.skipIf(!bin)('sdt-native serve limits', () => {
  it('refuses a request line over 4 MiB by name and keeps serving', async () => {
    const dir = await tempDir('engine-limits');
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify(tinyModelConfig()));
    const child = spawn(bin!, ['serve', '--random-init', '1', '--config', config], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: child.stdout });
    const next = (() => {
      const queue: string[] = [];
      const waiting: ((l: string) => void)[] = [];
      lines.on('line', (l) => (waiting.length ? waiting.shift()!(l) : queue.push(l)));
      return () => new Promise<string>((res) => (queue.length ? res(queue.shift()!) : waiting.push(res)));
    })();
    expect(JSON.parse(await next()).event).toBe('ready');
    // 5 MiB of one JSON string: valid JSON, only too long.
    child.stdin.write(`{"id":"big","prompt":[5],"pad":"${'x'.repeat(5 << 20)}"}\n`);
    const big = JSON.parse(await next());
    expect(big.ok).toBe(false);
    expect(big.code).toBe('bad_request');
    expect(big.error).toMatch(/request line longer than 4 MiB/);
    child.stdin.write(`${JSON.stringify({ id: 'small', prompt: [5, 6], max_new: 2, block: 2 })}\n`);
    const small = JSON.parse(await next());
    expect(small.id).toBe('small');
    expect(small.ok, JSON.stringify(small)).toBe(true);
    child.stdin.end();
    await new Promise((res) => child.on('close', res));
  }, 60_000);

  it('names an unknown flag as unknown and refuses two model sources', () => {
    const foo = spawnSync(bin!, ['serve', '--foo'], { encoding: 'utf8' });
    expect(foo.status).toBe(2);
    expect(foo.stderr).toMatch(/unknown flag --foo/);
    const both = spawnSync(bin!, ['serve', '--ckpt', 'x', '--random-init', '1'], { encoding: 'utf8' });
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--ckpt and --random-init cannot be used together/);
  });
});
