import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from './errors.ts';

export type OptionType = 'string' | 'number' | 'boolean' | 'list';

export interface OptionSpec {
  type: OptionType;
  description: string;
  default?: string | number | boolean | string[];
  /** Placeholder shown in help, e.g. "DIR". */
  arg?: string;
  short?: string;
  required?: boolean;
  /** Allowed values for string options. */
  choices?: readonly string[];
  /** Range of a number option, inclusive; checked before the command runs, one message for every command. */
  min?: number;
  max?: number;
  /** The value must be above min, not equal to it. */
  minExclusive?: boolean;
  /** A number option that must be a whole number. */
  integer?: boolean;
  /**
   * A path the command writes: 'file' or 'dir'. Checked before any work: a file output must not be a
   * directory, no output may sit under a file, and none may be one of the command's inputs or another output.
   */
  output?: 'file' | 'dir';
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export interface CommandSpec {
  /** Full name as typed, e.g. "data build". */
  name: string;
  summary: string;
  /** Longer text printed under the usage line. */
  description?: string;
  options: Record<string, OptionSpec>;
  /** Names of positional arguments, shown in usage; e.g. ["FILE"]. */
  positionals?: { name: string; description: string; required?: boolean; variadic?: boolean }[];
  /**
   * Flags that cannot be given together: [a, b, why], refused rather than resolved silently. A side
   * "name=value" matches when the option has that value (given or by default), e.g. ['kind=edit', 't', ...].
   */
  conflicts?: [string, string, string][];
  examples?: string[];
  run(opts: OptionValues, positionals: string[]): Promise<number | undefined>;
}

export function formatHelp(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ');
  const lines = [`Usage: sdt ${spec.name} [options]${pos ? ` ${pos}` : ''}`, '', spec.summary];
  if (spec.description) lines.push('', spec.description.trim());
  if (spec.positionals?.length) {
    lines.push('', 'Arguments:');
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(28)} ${p.description}`);
  }
  lines.push('', 'Options:');
  const entries = Object.entries(spec.options);
  entries.push(['help', { type: 'boolean', description: 'show this help', short: 'h' }]);
  for (const [name, o] of entries) {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.arg ?? o.type.toUpperCase()}`}`;
    let desc = o.description;
    if (o.choices) desc += ` (${o.choices.join('|')})`;
    const range = rangeText(o);
    if (range) desc += ` (${range})`;
    if (o.required) desc += ' [required]';
    else if (o.default !== undefined && o.type !== 'boolean')
      desc += ` [default: ${JSON.stringify(o.default)}]`;
    lines.push(`  ${flag.padEnd(30)} ${desc}`);
  }
  if (spec.examples?.length) {
    lines.push('', 'Examples:');
    for (const e of spec.examples) lines.push(`  ${e}`);
  }
  return `${lines.join('\n')}\n`;
}

/** "an integer >= 1", "a number in [0, 1]"; '' when the option declares no range. */
function rangeText(o: OptionSpec): string {
  if (o.type !== 'number') return '';
  const what = o.integer ? 'an integer' : 'a number';
  const open = o.minExclusive ? '(' : '[';
  if (o.min !== undefined && o.max !== undefined) return `${what} in ${open}${o.min}, ${o.max}]`;
  if (o.min !== undefined) return `${what} ${o.minExclusive ? '>' : '>='} ${o.min}`;
  if (o.max !== undefined) return `${what} <= ${o.max}`;
  return o.integer ? what : '';
}

/** Why `n` is outside the option's declared range, or null. */
export function rangeProblem(name: string, o: OptionSpec, n: number): string | null {
  const bad =
    (o.integer && !Number.isInteger(n)) ||
    (o.min !== undefined && (n < o.min || (o.minExclusive && n === o.min))) ||
    (o.max !== undefined && n > o.max);
  return bad ? `--${name} must be ${rangeText(o)}; got ${n}` : null;
}

/**
 * A value that starts with "-" after a flag that takes one ("--vocab-size -5") is the flag's value, not an
 * unknown option: joined as "--vocab-size=-5" so the range check, not the parser, names what is wrong.
 */
function joinDashValues(spec: CommandSpec, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    const o = name !== undefined ? spec.options[name] : undefined;
    if (o && o.type !== 'boolean' && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Output paths: refused before any work when they cannot be written or would overwrite an input. */
function checkOutputs(spec: CommandSpec, opts: OptionValues, positionals: string[]): void {
  const fail = (msg: string) => {
    throw new UserError(`sdt ${spec.name}: ${msg}`);
  };
  const kind = (p: string) => {
    try {
      return statSync(p).isDirectory() ? 'dir' : 'file';
    } catch {
      return undefined;
    }
  };
  const inputs = new Map<string, string>();
  const declared = spec.positionals ?? [];
  for (const [i, p] of positionals.entries())
    inputs.set(resolve(p), declared[Math.min(i, declared.length - 1)]?.name ?? p);
  for (const [name, o] of Object.entries(spec.options))
    if (!o.output && o.type === 'string' && typeof opts[name] === 'string' && opts[name] !== o.default)
      inputs.set(resolve(opts[name] as string), `--${name}`);
  const outputs = new Map<string, string>();
  for (const [name, o] of Object.entries(spec.options)) {
    const v = opts[name];
    if (!o.output || typeof v !== 'string' || v === '' || v === '-') continue;
    const abs = resolve(v);
    const k = kind(abs);
    if (o.output === 'file' && k === 'dir') fail(`--${name} ${v} is a directory; give a file path.`);
    if (o.output === 'dir' && k === 'file') fail(`--${name} ${v} is a file; give a directory.`);
    for (let up = dirname(abs); up !== dirname(up); up = dirname(up)) {
      if (kind(up) === 'file') fail(`--${name} ${v}: ${up} is a file, so nothing can be written under it.`);
    }
    const input = inputs.get(abs);
    if (input) fail(`--${name} ${v} is also the input ${input}; write to another path.`);
    const other = outputs.get(abs);
    if (other) fail(`--${name} and ${other} are the same path (${v}); give each its own.`);
    outputs.set(abs, `--${name}`);
  }
}

/** Parse argv for a command; errors name the flag at fault and point at --help. */
export function parseCommandArgs(
  spec: CommandSpec,
  argv: string[],
): { opts: OptionValues; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.type === 'boolean' ? 'boolean' : 'string',
      ...(o.short ? { short: o.short } : {}),
      ...(o.type === 'list' ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joinDashValues(spec, argv),
      options,
      allowPositionals: true,
      strict: true,
      allowNegative: true,
    } as never);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new UserError(`sdt ${spec.name}: ${msg}. Run \`sdt ${spec.name} --help\` for the options.`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) return { opts: {}, positionals: parsed.positionals, help: true };
  const opts: OptionValues = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const raw = values[name];
    if (raw === undefined) {
      if (o.required) throw new UserError(`sdt ${spec.name}: --${name} is required (${o.description}).`);
      opts[name] = o.default;
      continue;
    }
    if (o.type === 'number') {
      const n = Number(raw);
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) {
        throw new UserError(`sdt ${spec.name}: --${name} expects a number, got ${JSON.stringify(raw)}.`);
      }
      const range = rangeProblem(name, o, n);
      if (range) throw new UserError(`sdt ${spec.name}: ${range}.`);
      opts[name] = n;
    } else if (o.type === 'list') {
      // Lists accept repeated flags and comma-separated values; with choices, every item is one of them.
      const items = (raw as string[]).flatMap((v) => v.split(',')).filter((v) => v.length > 0);
      const bad = o.choices ? items.find((v) => !o.choices!.includes(v)) : undefined;
      if (bad !== undefined)
        throw new UserError(
          `sdt ${spec.name}: every item of --${name} must be one of ${o.choices!.join(', ')}; got ${JSON.stringify(bad)}.`,
        );
      opts[name] = items;
    } else {
      if (o.choices && typeof raw === 'string' && !o.choices.includes(raw)) {
        throw new UserError(
          `sdt ${spec.name}: --${name} must be one of ${o.choices.join(', ')}; got ${JSON.stringify(raw)}.`,
        );
      }
      opts[name] = raw as string | boolean;
    }
  }
  const required = (spec.positionals ?? []).filter((p) => p.required).length;
  if (parsed.positionals.length < required) {
    const missing = (spec.positionals ?? []).slice(parsed.positionals.length).map((p) => p.name);
    throw new UserError(`sdt ${spec.name}: missing ${missing.join(', ')}. Run \`sdt ${spec.name} --help\`.`);
  }
  const declared = spec.positionals ?? [];
  if (!declared.at(-1)?.variadic && parsed.positionals.length > declared.length) {
    const extra = parsed.positionals.slice(declared.length).map((p) => JSON.stringify(p));
    throw new UserError(
      `sdt ${spec.name}: unexpected argument${extra.length > 1 ? 's' : ''} ${extra.join(' ')} (it takes ${declared.length ? declared.map((p) => p.name).join(' ') : 'no arguments'}; options start with --). Run \`sdt ${spec.name} --help\`.`,
    );
  }
  // "--kind=edit" matches the option's value, given or default; "--t" matches a flag that was given.
  const given = (side: string) => {
    const [name, value] = side.split('=');
    if (value !== undefined) return String(opts[name]) === value;
    return values[name] !== undefined && values[name] !== false;
  };
  const shown = (side: string) => `--${side.includes('=') ? side.replace('=', ' ') : side}`;
  for (const [a, b, why] of spec.conflicts ?? []) {
    if (given(a) && given(b))
      throw new UserError(`sdt ${spec.name}: ${shown(a)} and ${shown(b)} cannot be used together: ${why}.`);
  }
  checkOutputs(spec, opts, parsed.positionals);
  return { opts, positionals: parsed.positionals, help: false };
}

/** Typed accessors: the CLI layer guarantees the type from the spec. */
export const str = (o: OptionValues, k: string): string => o[k] as string;
export const optStr = (o: OptionValues, k: string): string | undefined => o[k] as string | undefined;
export const num = (o: OptionValues, k: string): number => o[k] as number;
export const optNum = (o: OptionValues, k: string): number | undefined => o[k] as number | undefined;
export const bool = (o: OptionValues, k: string): boolean => Boolean(o[k]);
export const list = (o: OptionValues, k: string): string[] => (o[k] as string[] | undefined) ?? [];
