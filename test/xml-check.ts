import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

/** Asserts that an XML parser independent of ours (Python's ElementTree) accepts `text`. */
export function expectWellFormedXml(text: string): void {
  const r = spawnSync(
    'python3',
    ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.read())'],
    {
      input: text,
      encoding: 'utf8',
    },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}
