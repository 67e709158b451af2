/** Minimal .npy (format 1.0, C order, little-endian) files for the `sdt-native score|forward` exchange. */
import { readFile, writeFile } from 'node:fs/promises';
import { UserError } from '../../common/errors.ts';

export async function writeNpy(
  path: string,
  data: Int32Array | Float32Array,
  shape: number[],
): Promise<void> {
  const descr = data instanceof Int32Array ? '<i4' : '<f4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // The data must start at a multiple of 64 bytes (the format's alignment rule).
  header += `${' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64)}\n`;
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  await writeFile(
    path,
    Buffer.concat([
      pre,
      Buffer.from(header, 'latin1'),
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    ]),
  );
}

export async function readNpyFloat32(path: string): Promise<{ data: Float32Array; shape: number[] }> {
  const buf = await readFile(path);
  if (buf.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new UserError(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  if (!header.includes("'<f4'"))
    throw new UserError(`${path}: expected float32 (<f4), header ${header.trim()}`);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const off = start + headerLen;
  const bytes = buf.subarray(off);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { data, shape };
}
