import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../common/native.ts';

/**
 * A binary of native/build (sdt-native or sdt-native-tests), built on demand with scripts/build-native.js;
 * undefined, so the calling tests skip with a warning, when CMake is missing. $SDT_NATIVE overrides sdt-native.
 */
export function builtNative(name: 'sdt-native' | 'sdt-native-tests' = 'sdt-native'): string | undefined {
  const bin =
    name === 'sdt-native' && process.env.SDT_NATIVE
      ? process.env.SDT_NATIVE
      : join(repoRoot, 'native', 'build', name);
  if (existsSync(bin)) return bin;
  if (spawnSync('cmake', ['--version']).error) {
    console.warn(`native tests skipped: cmake is not installed (needed to build ${name})`);
    return undefined;
  }
  spawnSync('node', [join(repoRoot, 'scripts', 'build-native.js')], { stdio: 'inherit' });
  return existsSync(bin) ? bin : undefined;
}

/**
 * config.json of a tiny model for native tests (vocabulary 40, 2 layers of width 32, <|mask|> = 3,
 * <|pad|> = 0, <|bos|> = 1, <|eos|> = 2); `over` changes what a test needs (attention mode, vocabulary...).
 */
export function tinyModelConfig(
  over: Record<string, unknown> = {},
): Record<string, unknown> & { vocab_size: number } {
  return {
    vocab_size: 40,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    attention_mode: 'bidirectional',
    block_size: 4,
    mask_token_id: 3,
    pad_token_id: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    ...over,
  } as Record<string, unknown> & { vocab_size: number };
}
