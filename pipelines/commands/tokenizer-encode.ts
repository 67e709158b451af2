import { readFile } from 'node:fs/promises';
import { bool, type CommandSpec, optStr, str } from '../../common/cli.ts';
import { UserError } from '../../common/errors.ts';
import { decodeText } from '../steps/decode.ts';
import { loadTokenizer } from '../tokenizer/index.ts';

export const command: CommandSpec = {
  name: 'tokenizer encode',
  summary: 'show how a tokenizer splits a text: ids, byte offsets and token text',
  description: `
Encodes TEXT (or the content of --file) without adding special tokens: a literal "<|mask|>" in the text is
ordinary text here, so data can never inject control tokens. Token text is shown JSON-quoted so spaces,
tabs and newlines are visible; a token holding part of a multi-byte character shows U+FFFD.`,
  positionals: [{ name: 'TEXT', description: 'the text to encode (or use --file)', variadic: true }],
  options: {
    tokenizer: { type: 'string', arg: 'PATH', description: 'tokenizer.json to use', required: true },
    file: {
      type: 'string',
      arg: 'FILE',
      description: 'encode this file instead of TEXT; refused, as data build refuses it, unless it is text',
    },
    lossy: {
      type: 'boolean',
      description: 'decode a --file that is not valid UTF-8 anyway, invalid bytes becoming U+FFFD',
    },
    format: {
      type: 'string',
      description: 'table: one token per line; ids: the ids on one line; json: ids, offsets and tokens',
      choices: ['table', 'ids', 'json'],
      default: 'table',
    },
  },
  examples: [
    'sdt tokenizer encode --tokenizer tok.json "def f(x):\\n    return x"',
    'sdt tokenizer encode --tokenizer tok.json --file a.py --format ids',
  ],
  async run(opts, positionals) {
    const file = optStr(opts, 'file');
    if (file && positionals.length > 0)
      throw new UserError('sdt tokenizer encode: give TEXT or --file, not both.');
    let text: string;
    if (file) {
      let body: Buffer;
      try {
        body = await readFile(file);
      } catch (err) {
        throw new UserError(`cannot read --file ${file} (${(err as Error).message}).`);
      }
      // The project's one decoding rule (pipelines/steps/decode.ts): what data build refuses is refused here.
      const decoded = decodeText(body);
      if (bool(opts, 'lossy') || body.length === 0) text = body.toString('utf8');
      else if ('text' in decoded) text = decoded.text;
      else
        throw new UserError(
          `--file ${file} is not text (${decoded.reason}: ${decoded.detail}); data build would drop it. Pass --lossy to encode it with invalid bytes as U+FFFD.`,
        );
    } else if (positionals.length > 0) {
      text = positionals.join(' ');
    } else {
      throw new UserError(
        'sdt tokenizer encode: give the TEXT to encode or --file FILE. Run `sdt tokenizer encode --help`.',
      );
    }
    const tok = await loadTokenizer(str(opts, 'tokenizer'));
    const { ids, byteOffsets } = tok.encodeWithOffsets(text);
    const format = str(opts, 'format');
    if (format === 'ids') {
      process.stdout.write(`${ids.join(' ')}\n`);
    } else if (format === 'json') {
      const tokens = [...ids].map((id) => tok.tokenText(id));
      process.stdout.write(`${JSON.stringify({ ids: [...ids], byteOffsets: [...byteOffsets], tokens })}\n`);
    } else {
      const lines = [
        `${ids.length} tokens, ${byteOffsets[ids.length]} bytes (${(byteOffsets[ids.length] / Math.max(1, ids.length)).toFixed(2)} bytes/token)`,
      ];
      lines.push(`${'index'.padStart(6)} ${'id'.padStart(6)} ${'byte'.padStart(7)}  token`);
      for (let i = 0; i < ids.length; i++) {
        lines.push(
          `${String(i).padStart(6)} ${String(ids[i]).padStart(6)} ${String(byteOffsets[i]).padStart(7)}  ${JSON.stringify(tok.tokenText(ids[i]))}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return 0;
  },
};
