import { type CommandSpec, formatHelp, parseCommandArgs } from '../common/cli.ts';
import { UserError } from '../common/errors.ts';
import { commands } from './commands.ts';

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 10) + 2;
  const lines = [
    'sdt: build, train, sample and evaluate discrete-diffusion code models (Seed Diffusion style).',
    '',
    'Usage: sdt <command> [options]      sdt <command> --help for its options and defaults',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
  ];
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(topHelp());
    return 0;
  }
  // --stage is an option of `sdt train` that selects the post-training stages, wherever it stands.
  const stageFlag = argv[0] === 'train' && argv.some((a) => a === '--stage' || a.startsWith('--stage='));
  // Longest match first: "data build" before "data".
  const sorted = [...commands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  const entry = stageFlag
    ? commands.find((c) => c.name === 'train --stage')
    : sorted.find((c) => {
        const words = c.name.split(' ');
        return words.every((w, i) => argv[i] === w);
      });
  if (!entry) {
    const group = commands.filter((c) => c.name.split(' ')[0] === argv[0]);
    if (group.length > 0) {
      process.stderr.write(
        `sdt ${argv[0]}: unknown or missing subcommand${argv[1] ? ` "${argv[1]}"` : ''}. One of:\n`,
      );
      for (const c of group) process.stderr.write(`  sdt ${c.name.padEnd(22)} ${c.summary}\n`);
    } else {
      process.stderr.write(`sdt: unknown command "${argv[0]}". Run \`sdt --help\` for the list.\n`);
    }
    return 2;
  }
  const rest = argv.slice(stageFlag ? 1 : entry.name.split(' ').length);
  const stop = watchInterrupts();
  let spec: CommandSpec | undefined;
  try {
    spec = (await entry.load()).command;
    if (stageFlag && rest.some((a) => a === '--help' || a === '-h')) {
      process.stdout.write(formatHelp(spec));
      return 0;
    }
    const { opts, positionals, help } = parseCommandArgs(spec, rest);
    if (help) {
      process.stdout.write(formatHelp(spec));
      return 0;
    }
    const code = (await spec.run(opts, positionals)) ?? 0;
    // A command that handles Ctrl-C itself (train checkpoints first) still exits as interrupted.
    return stop.signal ? SIGNAL_EXIT[stop.signal] : code;
  } catch (err) {
    if (stop.signal) {
      process.stderr.write(`sdt ${entry.name}: interrupted (${stop.signal}).\n`);
      return SIGNAL_EXIT[stop.signal];
    }
    if (err instanceof UserError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(
      `sdt ${entry.name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  } finally {
    stop.dispose();
  }
}

/** The shell's convention: 128 + the signal number. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT;

/**
 * Ctrl-C (or SIGTERM) exits 130 (143) from every command. A command with its own handler (train asks
 * sdt-native to checkpoint first) finishes that work and main returns the code; any other exits at once.
 */
function watchInterrupts(): { signal: StopSignal | undefined; dispose(): void } {
  const state: { signal: StopSignal | undefined; dispose(): void } = {
    signal: undefined,
    dispose: () => {
      for (const s of Object.keys(SIGNAL_EXIT) as StopSignal[]) process.off(s, handlers[s]);
    },
  };
  const handlers = Object.fromEntries(
    (Object.keys(SIGNAL_EXIT) as StopSignal[]).map((s) => [
      s,
      () => {
        state.signal = s;
        if (process.listenerCount(s) === 1) process.exit(SIGNAL_EXIT[s]);
      },
    ]),
  ) as Record<StopSignal, () => void>;
  for (const s of Object.keys(SIGNAL_EXIT) as StopSignal[]) process.on(s, handlers[s]);
  return state;
}
