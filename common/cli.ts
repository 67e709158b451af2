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
  positionals?: { name: string; description: string; required?: boolean }[];
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
      args: argv,
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
      opts[name] = n;
    } else if (o.type === 'list') {
      // Lists accept repeated flags and comma-separated values.
      opts[name] = (raw as string[]).flatMap((v) => v.split(',')).filter((v) => v.length > 0);
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
  return { opts, positionals: parsed.positionals, help: false };
}

/** Typed accessors: the CLI layer guarantees the type from the spec. */
export const str = (o: OptionValues, k: string): string => o[k] as string;
export const optStr = (o: OptionValues, k: string): string | undefined => o[k] as string | undefined;
export const num = (o: OptionValues, k: string): number => o[k] as number;
export const optNum = (o: OptionValues, k: string): number | undefined => o[k] as number | undefined;
export const bool = (o: OptionValues, k: string): boolean => Boolean(o[k]);
export const list = (o: OptionValues, k: string): string[] => (o[k] as string[] | undefined) ?? [];
